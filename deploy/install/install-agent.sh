#!/usr/bin/env bash
# Install (or remove) the Vigil agent on this host under systemd.
#
#   sudo deploy/install/install-agent.sh --source /path/to/vigil-checkout-or-wheel \
#        --server nats://nats.example.com:4222 \
#        --creds web-1.creds --inbox-prefix _INBOX_web-1      # from `vigil agent enroll web-1`
#   sudo deploy/install/install-agent.sh --uninstall [--purge]
#
# What it does:
#   - a virtual environment in /opt/vigil-agent with the base install of Vigil
#     (no server dependencies): python3 -m venv + pip install SOURCE
#   - /etc/vigil/agent.yaml: the given --config, else a minimal one (this host's system
#     metrics, pushed to --server); never overwrites an existing file
#   - /etc/vigil/agent.creds (0600, root): the enrolment credentials. The unit runs as a
#     systemd DynamicUser, so they reach it through LoadCredential= (a drop-in), and the
#     config names /run/credentials/vigil-agent.service/nats.creds
#   - /etc/systemd/system/vigil-agent.service from deploy/systemd (paths set to
#     /opt/vigil-agent), daemon-reload, enable --now
#   --uninstall stops and disables the unit, removes it, its drop-in and the venv; the
#   config, credentials and spool (/var/lib/vigil-agent) stay unless --purge.
#
# Testing: --prefix DIR puts every file under DIR, --dry-run prints the commands that
# would change the system (venv, pip, systemctl) instead of running them.
set -euo pipefail

PREFIX=""
DRY_RUN=0
UNINSTALL=0
PURGE=0
SOURCE="vigil"
CONFIG=""
CREDS=""
SERVER=""
INBOX_PREFIX=""
PYTHON="${PYTHON:-python3}"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
UNIT_SOURCE="$SCRIPT_DIR/../systemd/vigil-agent.service"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
  cat <<'EOF'
options:
  --source SPEC        what pip installs (default: vigil; a checkout path or a wheel works)
  --config FILE        agent configuration to install as /etc/vigil/agent.yaml
  --creds FILE         .creds file from `vigil agent enroll HOST`
  --server URL         NATS URL for a generated configuration (repeat the option for more)
  --inbox-prefix P     inbox prefix printed by `vigil agent enroll` (needed with --creds)
  --unit FILE          systemd unit to install (default: deploy/systemd/vigil-agent.service)
  --python PYTHON      interpreter for the venv (default: python3)
  --uninstall          remove the agent; --purge also removes config, creds and spool
  --prefix DIR         install under DIR instead of / (testing)
  --dry-run            print system-changing commands instead of running them
EOF
}

SERVERS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --source) SOURCE="$2"; shift 2 ;;
    --config) CONFIG="$2"; shift 2 ;;
    --creds) CREDS="$2"; shift 2 ;;
    --server) SERVERS+=("$2"); shift 2 ;;
    --inbox-prefix) INBOX_PREFIX="$2"; shift 2 ;;
    --unit) UNIT_SOURCE="$2"; shift 2 ;;
    --python) PYTHON="$2"; shift 2 ;;
    --uninstall) UNINSTALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    --prefix) PREFIX="${2%/}"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-agent.sh: unknown option $1 (--help lists them)" >&2; exit 2 ;;
  esac
done

VENV=/opt/vigil-agent
ETC=/etc/vigil
UNIT_NAME=vigil-agent.service
UNIT=/etc/systemd/system/$UNIT_NAME
DROPIN_DIR=/etc/systemd/system/$UNIT_NAME.d
STATE=/var/lib/vigil-agent
CRED_PATH=/run/credentials/$UNIT_NAME/nats.creds

run() {  # a command that changes the system: printed in dry-run mode
  if [ "$DRY_RUN" -eq 1 ]; then
    printf 'would run:'; printf ' %q' "$@"; printf '\n'
  else
    "$@"
  fi
}

systemd() {  # systemctl acts on the real system: only without --prefix and --dry-run
  if [ -n "$PREFIX" ]; then DRY_RUN=1 run systemctl "$@"; else run systemctl "$@"; fi
}

say() { printf 'install-agent: %s\n' "$*"; }
die() { printf 'install-agent: cannot %s\n' "$*" >&2; exit 1; }

if [ "$DRY_RUN" -eq 0 ] && [ -z "$PREFIX" ] && [ "$(id -u)" -ne 0 ]; then
  die "install the agent: run as root (or with --prefix DIR --dry-run to try it)"
fi

uninstall() {
  systemd disable --now "$UNIT_NAME" || true
  rm -f "$PREFIX$UNIT"
  rm -rf "$PREFIX$DROPIN_DIR"
  systemd daemon-reload
  run rm -rf "$PREFIX$VENV"
  if [ "$PURGE" -eq 1 ]; then
    rm -f "$PREFIX$ETC/agent.yaml" "$PREFIX$ETC/agent.creds"
    rmdir "$PREFIX$ETC" 2>/dev/null || true
    rm -rf "$PREFIX$STATE"
    say "removed the agent, its configuration, credentials and spool"
  else
    say "removed the agent; kept $ETC/agent.yaml, $ETC/agent.creds and the spool ($STATE)"
  fi
}

write_config() {
  local target="$PREFIX$ETC/agent.yaml"
  if [ -e "$target" ]; then
    say "keeping the existing $ETC/agent.yaml"
    return
  fi
  if [ -n "$CONFIG" ]; then
    install -m 0644 "$CONFIG" "$target"
    say "installed $ETC/agent.yaml from $CONFIG"
    return
  fi
  {
    echo "# Written by install-agent.sh: this host's system metrics, pushed to NATS."
    echo "# Every section and field: tests/testdata/config/good/full.yaml in Vigil's source."
    if [ "${#SERVERS[@]}" -eq 0 ] && [ -z "$CREDS" ]; then
      echo "{}"
      return
    fi
    echo "nats:"
    if [ "${#SERVERS[@]}" -gt 0 ]; then
      printf '  servers: ['
      local sep=""
      for s in "${SERVERS[@]}"; do printf '%s"%s"' "$sep" "$s"; sep=", "; done
      printf ']\n'
    fi
    if [ -n "$CREDS" ]; then
      echo "  creds_file: $CRED_PATH   # LoadCredential= of $ETC/agent.creds"
      echo "  inbox_prefix: \"$INBOX_PREFIX\""
    fi
  } > "$target"
  chmod 0644 "$target"
  say "wrote $ETC/agent.yaml"
}

install_agent() {
  [ -r "$UNIT_SOURCE" ] || die "read the systemd unit $UNIT_SOURCE (--unit FILE)"
  if [ -n "$CREDS" ]; then
    [ -r "$CREDS" ] || die "read the credentials $CREDS"
    [ -n "$INBOX_PREFIX" ] || die "use --creds without --inbox-prefix (printed by vigil agent enroll)"
  fi
  [ -z "$CONFIG" ] || [ -r "$CONFIG" ] || die "read the configuration $CONFIG"

  run "$PYTHON" -m venv "$PREFIX$VENV"
  run "$PREFIX$VENV/bin/pip" install --upgrade pip
  run "$PREFIX$VENV/bin/pip" install --upgrade "$SOURCE"

  mkdir -p "$PREFIX$ETC" "$PREFIX/etc/systemd/system"
  chmod 0755 "$PREFIX$ETC"
  if [ -n "$CREDS" ]; then
    install -m 0600 "$CREDS" "$PREFIX$ETC/agent.creds"
    mkdir -p "$PREFIX$DROPIN_DIR"
    cat > "$PREFIX$DROPIN_DIR/credentials.conf" <<EOF
# Written by install-agent.sh: the enrolment credentials reach the DynamicUser
# unit as $CRED_PATH (root keeps $ETC/agent.creds 0600).
[Service]
LoadCredential=nats.creds:$ETC/agent.creds
EOF
    say "installed $ETC/agent.creds (0600) and $DROPIN_DIR/credentials.conf"
  fi
  write_config
  sed "s#/opt/vigil/bin/#$VENV/bin/#g" "$UNIT_SOURCE" > "$PREFIX$UNIT"
  chmod 0644 "$PREFIX$UNIT"
  say "installed $UNIT"

  run "$PREFIX$VENV/bin/vigil-agent" --config "$PREFIX$ETC/agent.yaml" --check-config
  systemd daemon-reload
  systemd enable --now "$UNIT_NAME"
  say "done: systemctl status vigil-agent; journalctl -u vigil-agent -f"
}

if [ "$UNINSTALL" -eq 1 ]; then
  uninstall
else
  install_agent
fi
