#!/usr/bin/env bash
# Main job: set up (idempotent), then run the sample container end to end.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bash scripts/setup.sh
exec npx tsx scripts/demo.ts
