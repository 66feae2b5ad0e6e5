#!/usr/bin/env bash
# The whole test suite: set-up, type check, generated-code drift, unit and e2e tests (e2e on
# containerd 1.6, 1.7 and 2.x; E2E_CONTAINERD=1.6 narrows it for a quick local run).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bash scripts/setup.sh
npm run --silent typecheck
# src/gen must be exactly what the protos generate.
rm -rf .cache/gen-check
bash scripts/gen-proto.sh .cache/gen-check
diff -r src/gen .cache/gen-check >/dev/null || { echo "src/gen is stale: run npm run gen" >&2; diff -r src/gen .cache/gen-check | head -20 >&2; exit 1; }
rm -rf .cache/gen-check
# vitest's own summary plus the plain closing line CI reads: "N passed, N failed, N skipped".
set +e
npx vitest run --reporter=default --reporter=json --outputFile.json=.cache/vitest-report.json
rc=$?
set -e
node -e '
  const r = require("./.cache/vitest-report.json");
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  if (r.numTotalTests === 0) { console.error("no tests ran"); process.exit(1); }
' || rc=1
exit $rc
