#!/usr/bin/env bash
# System packages the test suite needs: Debian's Chromium (real browser tests),
# espeak-ng and sox (speech test audio), poppler-utils (the PDF report rendered
# and read back), janus with janus.js and adapter.js (a real Janus VideoRoom and a
# browser publishing into it, for the bot's tests), iproute2 and util-linux (private
# network namespace). Installs them with apt when running as root; otherwise says
# what is missing.
set -euo pipefail
need=()
[[ -x /usr/lib/chromium/chromium || -x /usr/bin/chromium ]] || need+=(chromium)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v sox >/dev/null || need+=(sox)
command -v pdftoppm >/dev/null && command -v pdftotext >/dev/null || need+=(poppler-utils)
command -v janus >/dev/null || need+=(janus)
[[ -f /usr/share/javascript/janus-gateway/janus.js ]] || need+=(libjs-janus-gateway)
[[ -f /usr/share/javascript/webrtc-adapter/adapter.min.js ]] || need+=(libjs-webrtc-adapter)
command -v ip >/dev/null || need+=(iproute2)
command -v unshare >/dev/null || need+=(util-linux)
((${#need[@]} == 0)) && exit 0
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "installing test packages: ${need[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
else
    echo "The test suite needs these system packages: ${need[*]}" >&2
    echo "Install them (e.g. sudo apt-get install ${need[*]}) and run make test again." >&2
    exit 1
fi
