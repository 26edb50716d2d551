#!/usr/bin/env bash
# Debian's OpenSSH server for the checkout-over-ssh test. The test starts its own sshd on a free loopback
# port with its own host key and authorized key (tests/integration/test_checkout.py); nothing runs as a
# service. Idempotent.
set -euo pipefail
if [ -x /usr/sbin/sshd ] && command -v ssh-keygen >/dev/null; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "error: the checkout-over-ssh test needs sshd: sudo apt-get install openssh-server" >&2
    exit 1
fi
echo "installing openssh-server (Debian's package) for the checkout-over-ssh test"
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openssh-server openssh-client
