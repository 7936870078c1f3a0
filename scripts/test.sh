#!/usr/bin/env bash
# The project's test command (`pnpm test`): installs what is missing, then runs jest.
# Arguments go to jest, e.g. `pnpm test tests/unit/harness.test.ts`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh && pnpm exec jest "$@"
