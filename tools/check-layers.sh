#!/usr/bin/env bash
# tools/check-layers.sh [SRCDIR] — the layering of gateway/ (gateway/README.md):
#   util → config → net → eio → sio → admin → bus → http → main.c
# fails when
#   - a folder includes the header of a folder above it (a call up must go through a
#     table the upper layer hands down, never through its header), or
#   - code outside gateway/net/ calls libwebsockets (net/ is its only user).
# That calls up do not link is checked by the build itself (layer-check-* programs,
# gateway/meson.build).
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
layers=(util config net eio sio admin bus http)
rank() {
	local i
	for i in "${!layers[@]}"; do
		[[ ${layers[$i]} == "$1" ]] && { echo "$i"; return; }
	done
	echo -1
}
fail=0
for dir in "${layers[@]}"; do
	r=$(rank "$dir")
	while IFS=: read -r file line inc; do
		[[ -z $file ]] && continue
		target=${inc%%/*}
		t=$(rank "$target")
		if ((t > r)); then
			echo "$file:$line: $dir/ includes $inc, a header of the $target/ layer above it" >&2
			fail=1
		fi
	done < <(grep -rnoE '#include "[a-z_]+/[a-z_0-9]+\.h"' "gateway/$dir" --include='*.c' --include='*.h' |
		sed -E 's/#include "([^"]+)"/\1/')
done
# meson puts each target's source folder on the include path: a header there named like
# a standard one (limits.h, time.h, ...) would be found by #include <...> instead
std="assert complex ctype errno fenv float inttypes iso646 limits locale math setjmp signal stdalign stdarg
stdatomic stdbool stddef stdint stdio stdlib stdnoreturn string tgmath threads time uchar wchar wctype
dirent fcntl poll pthread sched semaphore strings syslog termios unistd"
for h in $std; do
	found=$(find gateway -name "$h.h" | head -1)
	if [[ -n $found ]]; then
		echo "$found: named like the standard <$h.h>, which it would shadow for the files beside it" >&2
		fail=1
	fi
done
bad=$(grep -rnE '\blws_[a-z_]+\(|#include <libwebsockets' gateway --include='*.c' --include='*.h' | grep -v '^gateway/net/' || true)
if [[ -n $bad ]]; then
	echo "libwebsockets used outside gateway/net/:" >&2
	echo "$bad" >&2
	fail=1
fi
((fail)) && exit 1
echo "ok: each layer includes only its own headers and those below it; libwebsockets only in gateway/net/"
