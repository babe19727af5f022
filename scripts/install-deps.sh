#!/usr/bin/env bash
# Installs the Debian packages TunTcp needs, only those missing. Never run by hand in docs:
# run.sh, test.sh and fuzz.sh call it. Usage: install-deps.sh run|test|bench|fuzz
set -euo pipefail
need=(iproute2:ip)
case "${1:-run}" in
  fuzz|test) need+=(afl++:afl-fuzz) ;;
esac
case "${1:-run}" in
  test|bench) need+=(iputils-ping:ping netcat-openbsd:nc curl:curl tshark:tshark nftables:nft socat:socat python3:python3 wrk:wrk procps:ps microsocks:microsocks iperf3:iperf3 dnsmasq-base:dnsmasq dante-server:danted hping3:hping3 chromium:chromium) ;;
esac
missing=()
for pair in "${need[@]}"; do
  pkg=${pair%%:*}; cmd=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "install-deps: missing packages ${missing[*]}; run as root to install them" >&2; exit 1; fi
else SUDO=; fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
# Servers the tests start themselves (danted, iperf3) must not be started as system services by
# their packages: a policy-rc.d that says no (invoke-rc.d(8)), only for this install.
policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  policy=/usr/sbin/policy-rc.d
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null; $SUDO chmod +x "$policy"
  trap '$SUDO rm -f "$policy"' EXIT
fi
echo "iperf3 iperf3/start_daemon boolean false" | $SUDO debconf-set-selections
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
