#!/usr/bin/env bash
# tools/sdk-smoke.sh PREFIX — a plugin written outside this tree, against the installed SDK:
# the example plugin of docs/plugin-guide.md §8 (taken from the guide itself) is built
# with `pkg-config --cflags siogw-plugin` only, loaded by the installed gateway, and run
# through the installed battery (siogw-plugin-battery). Exit 0 when all of it works.
set -euo pipefail
prefix=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pc=$(dirname "$(find "$prefix" -name siogw-plugin.pc | head -1)")
[[ -f $pc/siogw-plugin.pc ]] || { echo "sdk-smoke: no siogw-plugin.pc under $prefix" >&2; exit 1; }
export PKG_CONFIG_PATH="$pc"
# the guide's §8 code block, as a reader would copy it
awk '/^## 8\. A minimal plugin/{s=1} s&&/^```c$/{c=1; next} c&&/^```$/{exit} c' \
	"$root/docs/plugin-guide.md" >"$work/loopback.c"
[[ -s $work/loopback.c ]] || { echo "sdk-smoke: no example in docs/plugin-guide.md §8" >&2; exit 1; }
cd "$work"
# the guide's §9 command, with pkg-config for the include path
cc -std=c11 -O2 -Wall -Werror -shared -fPIC -fvisibility=hidden \
	$(pkg-config --cflags siogw-plugin) -o loopback.so loopback.c -lpthread
exported=$(nm -D --defined-only loopback.so | awk '{print $3}')
[[ $exported == siogw_plugin_v1 ]] || { echo "sdk-smoke: exports: $exported" >&2; exit 1; }
"$prefix/bin/sio-gateway" --plugin-help ./loopback.so >/dev/null
battery=$(pkg-config --variable=battery siogw-plugin)
"$battery" ./loopback.so --deadline-ms=5000
echo "sdk-smoke: the guide's example plugin builds against the installed SDK and passes the installed battery"
