#!/usr/bin/env bash
# tools/check-layers.sh [SRCDIR] — fails when code outside gateway/net/ calls
# libwebsockets: net/ is the only layer that touches lws (gateway/net/net.h says why).
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
bad=$(grep -rnE '\blws_[a-z_]+\(|#include <libwebsockets' gateway --include='*.c' --include='*.h' | grep -v '^gateway/net/' || true)
if [[ -n $bad ]]; then
	echo "libwebsockets used outside gateway/net/:" >&2
	echo "$bad" >&2
	exit 1
fi
echo "ok: libwebsockets only in gateway/net/"
