#!/usr/bin/env bash
# Install Debian's docker-compose (v1, Python) so that tests can validate
# deploy/compose/compose.yaml with `docker-compose config`; no Docker engine needed.
# Idempotent. Run as root (or through sudo).
set -euo pipefail
if command -v docker-compose >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  exec sudo "$0" "$@"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends docker-compose
