#!/usr/bin/env bash
# Quick start: installs what is missing, then runs Redis, FerretDB (or your MONGODB_URI), an SMTP sink,
# the API, the worker and the scheduler on embedded defaults. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node_modules/.bin/tsx infra/dev/start.ts
