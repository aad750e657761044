#!/usr/bin/env bash
# Build Vigil's web UI (web/ui, Vite + uPlot) into web/ui/dist, which web/ui.py serves.
# Idempotent: `npm ci` runs only when package-lock.json changed, the build only when a
# source file changed (a hash of the sources is kept in web/ui/dist/.sources). Neither
# node_modules nor dist is committed. Needs Node.js 20+ and npm (Debian: apt-get install nodejs npm).
#
#   deploy/local/build-ui.sh            build if needed
#   deploy/local/build-ui.sh --force    build anyway
set -euo pipefail
cd "$(dirname "$0")/../../web/ui"

force=0
[ "${1:-}" = "--force" ] && force=1

if ! command -v npm >/dev/null 2>&1; then
  echo "build-ui: npm is missing; install Node.js 20+ and npm (apt-get install nodejs npm)" >&2
  exit 1
fi

lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ $force = 1 ] || [ ! -f node_modules/.vigil-lock ] || [ "$(cat node_modules/.vigil-lock)" != "$lock_hash" ]; then
  # A registry mirror without other platforms' optional packages (rollup's native
  # builds) writes a lock file that `npm ci` calls out of sync: then install from it
  # without rewriting it.
  if ! npm ci --no-audit --no-fund --loglevel=error 2>/tmp/vigil-npm-ci.$$; then
    echo "build-ui: npm ci refused the lock file ($(grep -m1 -o 'Missing: [^ ]*' /tmp/vigil-npm-ci.$$ || echo see the npm log)); using npm install --no-save" >&2
    npm install --no-save --no-audit --no-fund --loglevel=error
  fi
  rm -f /tmp/vigil-npm-ci.$$
  echo "$lock_hash" > node_modules/.vigil-lock
fi

sources_hash=$(find index.html package.json package-lock.json tsconfig.json vite.config.ts src -type f -print0 \
  | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [ $force = 0 ] && [ -f dist/index.html ] && [ -f dist/.sources ] && [ "$(cat dist/.sources)" = "$sources_hash" ]; then
  echo "build-ui: web/ui/dist is up to date"
  exit 0
fi
npm run --silent build
echo "$sources_hash" > dist/.sources
echo "build-ui: built web/ui/dist"
