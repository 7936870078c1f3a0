#!/usr/bin/env bash
# The project's test command: installs what is missing, then runs jest against real servers
# that the jest global setup starts (Redis, FerretDB or mongod, SMTP servers per test).
# Arguments go to jest, e.g. `bash scripts/test.sh tests/unit`.
# Ends with the plain line "N passed, N failed[, N skipped]".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
mkdir -p .mailroom
# One results file per run, so two runs at once do not report each other's counts.
results=.mailroom/jest-results-$$.json
trap 'rm -f "$results"' EXIT
status=0
pnpm exec jest --json --outputFile="$results" "$@" || status=$?
if [ -f "$results" ]; then
  node -e '
    const r = require(process.argv[1]);
    const skipped = r.numPendingTests + r.numTodoTests;
    const failed = r.numFailedTests + r.numRuntimeErrorTestSuites;
    console.log(`\n${r.numPassedTests} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
  ' "$PWD/$results"
fi
exit "$status"
