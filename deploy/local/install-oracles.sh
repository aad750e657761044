#!/usr/bin/env bash
# Install the reference implementations ("oracles") the compatibility tests
# compare Vigil against, from Debian's packages, WITHOUT starting their daemons.
#
#   deploy/local/install-oracles.sh
#
# Idempotent: when every package is installed it exits at once. Debian starts
# a package's service on install, and these exporters listen on every
# interface by default, so a policy-rc.d that refuses all starts (exit 101)
# is in place for the duration of the install; an existing policy-rc.d is put
# back afterwards, ours removed. The tests start the binaries themselves,
# bound to 127.0.0.1. Not root: a message and exit 0 (the tests then skip).
#
# To add an oracle, add a "package:binary" pair to ORACLES.
set -euo pipefail

ORACLES=(
  "prometheus-node-exporter:/usr/bin/prometheus-node-exporter"
  "prometheus-blackbox-exporter:/usr/bin/prometheus-blackbox-exporter"
  "prometheus:/usr/bin/prometheus"
  "prometheus-alertmanager:/usr/bin/prometheus-alertmanager"
)
POLICY=/usr/sbin/policy-rc.d

missing=()
for entry in "${ORACLES[@]}"; do
  pkg=${entry%%:*}
  bin=${entry#*:}
  if [ ! -x "$bin" ] || ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$pkg")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-oracles: not root, cannot install ${missing[*]}; compatibility tests will skip (run as root, or: sudo apt-get install --no-install-recommends ${missing[*]})" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-oracles: apt-get not found, cannot install ${missing[*]}; compatibility tests will skip" >&2
  exit 0
fi

# Refuse every service start during the install; put the previous policy back after.
backup=""
restore_policy() {
  if [ -n "$backup" ]; then
    mv -f "$backup" "$POLICY"
  else
    rm -f "$POLICY"
  fi
}
if [ -e "$POLICY" ]; then
  backup=$(mktemp "$POLICY.vigil-backup.XXXXXX")
  cp -p "$POLICY" "$backup"
fi
trap restore_policy EXIT
printf '#!/bin/sh\n# Installed by Vigil install-oracles.sh for the duration of an install.\nexit 101\n' >"$POLICY"
chmod 0755 "$POLICY"

export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when apt does not know a package yet.
needs_update=0
for pkg in "${missing[@]}"; do
  if ! apt-cache show "$pkg" >/dev/null 2>&1; then
    needs_update=1
  fi
done
if [ "$needs_update" -eq 1 ]; then
  apt-get update -qq
fi
# No recommends: prometheus-node-exporter-collectors brings systemd timers we do not want.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-oracles: installed ${missing[*]} (services not started)"
