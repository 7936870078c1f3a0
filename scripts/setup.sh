#!/usr/bin/env bash
# Installs whatever is missing for dev and tests on a Debian machine (idempotent; a few
# seconds when everything is there):
#   redis-server (apt), promtool (apt `prometheus`), chromium (apt; skip with MAILROOM_SKIP_CHROMIUM=1), Go >= 1.24
#   (/usr/local/go or apt golang-go), pnpm, node_modules (pnpm install --frozen-lockfile),
#   and the document engine: PostgreSQL 15 + DocumentDB and FerretDB v2 (scripts/build-engine.sh,
#   cached by source hash outside the clone; a fresh machine builds it in about five minutes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MIN_GO_MINOR=24 # Go 1.24: FerretDB v2.5.0's go.mod
PNPM_VERSION=10.34.9

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi
fi

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* by hand"
  if [ "$APT_UPDATED" -eq 0 ]; then
    log "apt-get update"
    "${SUDO[@]}" apt-get update -qq
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Prints the path of a Go toolchain (/usr/local/go first, then PATH), or nothing.
find_go() {
  if [ -x /usr/local/go/bin/go ]; then echo /usr/local/go/bin/go; return; fi
  command -v go 2>/dev/null || true
}

# 0 if the go at $1 is >= 1.MIN_GO_MINOR.
go_recent_enough() {
  local v minor
  v=$("$1" env GOVERSION 2>/dev/null || true) # e.g. go1.26.8
  [[ "$v" =~ ^go1\.([0-9]+) ]] || return 1
  minor=${BASH_REMATCH[1]}
  [ "$minor" -ge "$MIN_GO_MINOR" ]
}

# --- system packages (one apt-get update, one install) -----------------------------------
apt_pkgs=()
command -v redis-server >/dev/null 2>&1 || apt_pkgs+=(redis-server)
# promtool checks infra/prometheus/'s alert rules (tests/unit/monitoring.test.ts); Debian ships it in `prometheus`.
command -v promtool >/dev/null 2>&1 || apt_pkgs+=(prometheus)
if [ "${MAILROOM_SKIP_CHROMIUM:-}" = "1" ]; then
  :
elif ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  apt_pkgs+=(chromium fonts-liberation)
fi
GO=$(find_go)
[ -n "$GO" ] || apt_pkgs+=(golang-go)

if [ "${#apt_pkgs[@]}" -gt 0 ]; then
  apt_install "${apt_pkgs[@]}"
else
  log "system packages present (redis-server, promtool$( [ "${MAILROOM_SKIP_CHROMIUM:-}" = 1 ] || echo ', chromium'), go)"
fi

GO=$(find_go)
[ -n "$GO" ] || die "no Go toolchain after installing golang-go"
if ! go_recent_enough "$GO"; then
  die "$GO is $("$GO" env GOVERSION 2>/dev/null || echo 'of unknown version'); FerretDB needs Go >= 1.$MIN_GO_MINOR. Install it at /usr/local/go (https://go.dev/dl/) and rerun."
fi
# Make the toolchain chosen here the one the FerretDB build below finds first.
export PATH="$(dirname "$GO"):$PATH"

# --- pnpm and node_modules ---------------------------------------------------------------
if ! command -v pnpm >/dev/null 2>&1; then
  command -v npm >/dev/null 2>&1 || die "npm not found: install Node.js >= 20.19 first"
  log "npm install -g pnpm@$PNPM_VERSION"
  "${SUDO[@]}" npm install -g --no-fund --no-audit "pnpm@$PNPM_VERSION" >/dev/null
  hash -r
fi

log "pnpm install --frozen-lockfile"
pnpm install --frozen-lockfile --reporter=silent

# --- the document engine (cached by source hash; instant when present) -----------------------
bash scripts/build-engine.sh
log "done"
