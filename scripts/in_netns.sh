#!/usr/bin/env bash
# Run a command inside a private network namespace that holds only loopback, so that
# WebRTC stays on 127.0.0.1 and nothing can reach another host.
# As root: unshare -n. Otherwise: a user namespace too (unshare -rn), where allowed.
set -euo pipefail
if [[ "${MEETMOOD_IN_NETNS:-}" == 1 ]]; then
    exec "$@"  # already inside one
fi
if [[ $(id -u) -eq 0 ]]; then
    flags=(-n)
else
    flags=(-r -n)
fi
export MEETMOOD_IN_NETNS=1
exec unshare "${flags[@]}" -- bash -c 'ip link set lo up && exec "$@"' bash "$@"
