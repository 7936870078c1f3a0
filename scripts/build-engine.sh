#!/usr/bin/env bash
# Builds the dev/test document engine: PostgreSQL 15 with the DocumentDB extension (and the
# pgvector and pg_cron extensions it needs), and FerretDB v2 in front of it. Called by setup.sh;
# idempotent, and a few hundred milliseconds when everything is built and installed.
#
#   - Sources: the pinned tarballs in ../shared/vendor/ (or $MAILROOM_VENDOR_DIR), checked
#     against infra/engine/SHA256SUMS. Without them, and with MAILROOM_ENGINE_FETCH=1, the same
#     tags are downloaded from their public repositories and checked against the same hashes.
#   - Builds are cached outside the clone, by source hash, in $MAILROOM_CACHE_DIR (default
#     /var/cache/mailroom as root, else ~/.cache/mailroom), so CI on the same machine reuses them.
#   - The extensions are installed into the system's PostgreSQL 15 (pg_config's directories);
#     nothing is started here (infra/dev/documentdb.ts starts a private cluster).
#   - FerretDB v2.5.0 comes from the Go module proxy; the binary is kept in the cache and linked
#     as .mailroom/bin/ferretdb2.
# A fresh machine: about 80 s of C compiling and 110 s of Go compiling on 2 cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

log() { printf '[engine] %s\n' "$*"; }
die() { printf '[engine] ERROR: %s\n' "$*" >&2; exit 1; }

PG_MAJOR=15
FERRETDB_VERSION=v2.5.0
FERRETDB_MODULE=github.com/FerretDB/FerretDB/v2
# name | tarball | public source of the same tag (used only with MAILROOM_ENGINE_FETCH=1)
COMPONENTS=(
  "pgvector|pgvector-0.8.0.tar.gz|https://github.com/pgvector/pgvector/archive/refs/tags/v0.8.0.tar.gz"
  "pg_cron|pg_cron-1.6.3.tar.gz|https://github.com/citusdata/pg_cron/archive/refs/tags/v1.6.3.tar.gz"
  "documentdb|documentdb-0.106.0-ferretdb-2.5.0.tar.gz|https://github.com/FerretDB/documentdb/archive/refs/tags/v0.106.0-ferretdb-2.5.0.tar.gz"
)
# Debian's packages: the server, its headers, and what DocumentDB links against. Not Debian's
# postgresql-15-cron: its pg_cron 1.4.2 fails `CREATE EXTENSION documentdb` ("invalid schedule:
# 2 seconds"), so pg_cron is built from source.
APT_PKGS=(postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR libbson-dev libintelrdfpmath-dev libpcre2-dev
  libkrb5-dev postgresql-$PG_MAJOR-rum postgresql-$PG_MAJOR-postgis-3 pkg-config make gcc)

SUDO=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi

if [ -n "${MAILROOM_CACHE_DIR:-}" ]; then CACHE=$MAILROOM_CACHE_DIR
elif [ "$(id -u)" -eq 0 ]; then CACHE=/var/cache/mailroom
else CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/mailroom; fi
mkdir -p "$CACHE"
VENDOR=${MAILROOM_VENDOR_DIR:-$ROOT/../shared/vendor}

# --- Debian packages ---------------------------------------------------------------------
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
[ -x "$PG_CONFIG" ] || die "$PG_CONFIG not found after installing postgresql-server-dev-$PG_MAJOR"
PG_LIB=$("$PG_CONFIG" --pkglibdir)
PG_SHARE=$("$PG_CONFIG" --sharedir)

# DocumentDB finds Intel's decimal library with `pkg-config intelmathlib`; Debian ships only the
# static archives, so describe them (the call-by-value build, as upstream links it).
mkdir -p "$CACHE/pkgconfig"
cat > "$CACHE/pkgconfig/intelmathlib.pc" <<'PC'
Name: intelmathlib
Description: Intel(R) Decimal Floating-Point Math Library (Debian's static archives)
Version: 2.0u2
Cflags: -I/usr/include
Libs: -L/usr/lib/x86_64-linux-gnu -l:libbidgcc000.a
PC
export PKG_CONFIG_PATH="$CACHE/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

# --- sources, hash-checked -----------------------------------------------------------------
expected_hash() { awk -v f="$1" '$2 == f { print $1 }' infra/engine/SHA256SUMS; }

# Prints the path of a verified tarball: ../shared/vendor/, else the cache, else (if allowed) a download.
tarball() {
  local file=$1 url=$2 want got path
  want=$(expected_hash "$file")
  [ -n "$want" ] || die "no hash for $file in infra/engine/SHA256SUMS"
  for path in "$VENDOR/$file" "$CACHE/src/$file"; do
    if [ -f "$path" ]; then
      got=$(sha256sum "$path" | cut -d' ' -f1)
      [ "$got" = "$want" ] || die "$path: sha256 $got, expected $want"
      echo "$path"; return
    fi
  done
  [ "${MAILROOM_ENGINE_FETCH:-}" = 1 ] || die "$file not found in $VENDOR (set MAILROOM_ENGINE_FETCH=1 to download it)"
  mkdir -p "$CACHE/src"
  curl -fsSL "$url" -o "$CACHE/src/$file.part"
  got=$(sha256sum "$CACHE/src/$file.part" | cut -d' ' -f1)
  [ "$got" = "$want" ] || { rm -f "$CACHE/src/$file.part"; die "$url: sha256 $got, expected $want"; }
  mv "$CACHE/src/$file.part" "$CACHE/src/$file"
  echo "$CACHE/src/$file"
}

# The one source patch (infra/engine/*.patch) is part of DocumentDB's build key.
patch_hash=$(cat infra/engine/*.patch | sha256sum | cut -c1-12)

# Runs a build step with its output in $BUILD_LOG, shown only when the step fails.
quiet() {
  "$@" >>"$BUILD_LOG" 2>&1 || { tail -n 40 "$BUILD_LOG" >&2; die "failed: $* (whole output: $BUILD_LOG)"; }
}

build_component() {
  local name=$1 file=$2 url=$3 src key dir stamp
  key=$(expected_hash "$file" | cut -c1-12)
  [ -n "$key" ] || die "no hash for $file in infra/engine/SHA256SUMS"
  [ "$name" = documentdb ] && key="$key-$patch_hash"
  dir="$CACHE/build/$name-$key"
  stamp="$PG_SHARE/extension/.mailroom-$name"
  # Installed from these very sources already: nothing to do (the tarball is not even needed).
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then return; fi
  if [ ! -f "$dir/.built" ]; then
    src=$(tarball "$file" "$url")
    log "building $name ($file)"
    rm -rf "$dir" && mkdir -p "$dir"
    tar xzf "$src" -C "$dir" --strip-components=1
    BUILD_LOG="$dir.log" && : >"$BUILD_LOG"
    case $name in
      documentdb)
        quiet patch -p1 -d "$dir" -i "$ROOT/infra/engine/documentdb-libbson-1.23.patch"
        quiet make -C "$dir/pg_documentdb_core" PG_CONFIG="$PG_CONFIG" -j2
        quiet make -C "$dir/pg_documentdb" PG_CONFIG="$PG_CONFIG" -j2
        ;;
      *) quiet make -C "$dir" PG_CONFIG="$PG_CONFIG" -j2 ;;
    esac
    touch "$dir/.built"
  fi
  log "installing $name into $PG_LIB"
  BUILD_LOG="$dir.log"
  case $name in
    documentdb) quiet "${SUDO[@]}" make -C "$dir" PG_CONFIG="$PG_CONFIG" install-no-distributed ;;
    *) quiet "${SUDO[@]}" make -C "$dir" PG_CONFIG="$PG_CONFIG" install ;;
  esac
  echo "$key" | "${SUDO[@]}" tee "$stamp" >/dev/null
}

for c in "${COMPONENTS[@]}"; do
  IFS='|' read -r name file url <<<"$c"
  build_component "$name" "$file" "$url"
done

# --- FerretDB v2 -----------------------------------------------------------------------------
GO=$(command -v go || true)
[ -x /usr/local/go/bin/go ] && GO=/usr/local/go/bin/go
[ -n "$GO" ] || die "no Go toolchain (setup.sh installs one)"
fdb_key="$FERRETDB_VERSION-$(cat infra/engine/ferretdb/*.go | sha256sum | cut -c1-12)-$("$GO" env GOVERSION)"
fdb_bin="$CACHE/bin/ferretdb-$fdb_key"
if [ ! -x "$fdb_bin" ]; then
  log "building FerretDB $FERRETDB_VERSION from the Go module proxy"
  mod_dir=$(cd "$CACHE" && GOFLAGS=-mod=mod "$GO" mod download -json "$FERRETDB_MODULE@$FERRETDB_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -d "$mod_dir" ] || die "go mod download $FERRETDB_MODULE@$FERRETDB_VERSION failed"
  work="$CACHE/build/ferretdb-$fdb_key"
  rm -rf "$work" && mkdir -p "$work" && cp -r "$mod_dir/." "$work" && chmod -R u+w "$work"
  # The module zip lacks the generated build/version/version.txt, which the binary checks at
  # start; and cmd/ferretdb defines setGOMAXPROCS only for Go < 1.25 (infra/engine/ferretdb/).
  echo "$FERRETDB_VERSION" > "$work/build/version/version.txt"
  echo "mailroom-dev" > "$work/build/version/package.txt"
  cp infra/engine/ferretdb/*.go "$work/cmd/ferretdb/"
  mkdir -p "$CACHE/bin"
  BUILD_LOG="$work.log" && : >"$BUILD_LOG"
  (cd "$work" && quiet env CGO_ENABLED=0 "$GO" build -trimpath -buildvcs=false -o "$fdb_bin.tmp" ./cmd/ferretdb)
  mv "$fdb_bin.tmp" "$fdb_bin"
  rm -rf "$work"
fi
mkdir -p .mailroom/bin
ln -sfn "$fdb_bin" .mailroom/bin/ferretdb2
log "PostgreSQL $PG_MAJOR + DocumentDB, FerretDB $FERRETDB_VERSION: ready"
