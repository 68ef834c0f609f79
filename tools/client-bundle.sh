#!/usr/bin/env bash
# tools/client-bundle.sh OUTDIR VERSION INTEGRITY — the socket.io-client bundle that
# engine.serve_client serves: the dist/ files of socket.io-client@VERSION from npm, checked
# against the registry's sha512 INTEGRITY (as in a package-lock), copied byte for byte.
# Run by the build (gateway/client/meson.build); never committed. The tarball is cached
# in ${SIOGW_CLIENT_CACHE:-~/.cache/sio-gateway}. When npm is missing or unreachable the
# files are written empty and a warning printed: the build goes on, and a gateway with
# engine.serve_client: true refuses to start, saying the bundle was not fetched.
set -uo pipefail
out=$1 ver=$2 integrity=$3
files=(socket.io.js socket.io.js.map socket.io.min.js socket.io.min.js.map
	socket.io.esm.min.js socket.io.esm.min.js.map socket.io.msgpack.min.js socket.io.msgpack.min.js.map)
mkdir -p "$out"
cache_dir=${SIOGW_CLIENT_CACHE:-${HOME:-/tmp}/.cache/sio-gateway}
tgz=$cache_dir/socket.io-client-$ver.tgz
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sri() { printf 'sha512-%s' "$(openssl dgst -sha512 -binary "$1" | base64 -w0)"; }

fail() {
	echo "client-bundle: $* — engine.serve_client will not start until the build fetches socket.io-client@$ver" >&2
	for f in "${files[@]}"; do : >"$out/$f"; done
	exit 0
}

if [[ ! -s $tgz || $(sri "$tgz") != "$integrity" ]]; then
	command -v npm >/dev/null || fail "npm not found"
	mkdir -p "$cache_dir" || fail "cannot create $cache_dir"
	(cd "$tmp" && npm pack --silent "socket.io-client@$ver" >/dev/null 2>"$tmp/err") ||
		fail "npm pack socket.io-client@$ver failed: $(head -c 300 "$tmp/err")"
	[[ $(sri "$tmp/socket.io-client-$ver.tgz") == "$integrity" ]] || fail "the tarball's integrity is not $integrity"
	mv "$tmp/socket.io-client-$ver.tgz" "$tgz" || fail "cannot write $tgz"
fi
tar -xzf "$tgz" -C "$tmp" package/dist || fail "cannot unpack $tgz"
for f in "${files[@]}"; do
	if [[ -f $tmp/package/dist/$f ]]; then
		cp "$tmp/package/dist/$f" "$out/$f.tmp" && mv "$out/$f.tmp" "$out/$f" || fail "cannot write $out/$f"
	else
		: >"$out/$f" # not in this version (the msgpack build is optional)
	fi
done
