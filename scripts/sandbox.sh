#!/usr/bin/env bash
# Debian's bubblewrap and slirp4netns: the sandbox shell stages run in (hamster/execution/sandbox.py), and the
# user-mode network of its network="egress". A worker needs them; so do the tests that attack it. Idempotent.
set -euo pipefail
if command -v bwrap >/dev/null && command -v slirp4netns >/dev/null; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "error: shell stages run in a sandbox: sudo apt-get install bubblewrap slirp4netns" >&2
    exit 1
fi
echo "installing bubblewrap and slirp4netns (Debian's packages) for the shell stages' sandbox"
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends bubblewrap slirp4netns
