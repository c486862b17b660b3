#!/usr/bin/env bash
# Long fuzz pass (not in CI): the three proptest targets with MESALAB_FUZZ_CASES cases per
# experiment / env / input kind (default 5000) and a seed other than CI's fixed one. Prints each
# target's input count ("N inputs, 0 panics"); any panic fails the test with the shrunk input.
#   bash bench/fuzz_long.sh [cases] [seed]
set -euo pipefail
cd "$(dirname "$0")/.."
export MESALAB_FUZZ_CASES="${1:-5000}" MESALAB_FUZZ_SEED="${2:-$RANDOM}"
echo "cases per target part: $MESALAB_FUZZ_CASES, seed: $MESALAB_FUZZ_SEED"
for t in fuzz_config fuzz_envs fuzz_store; do
  start=$(date +%s)
  nice -n 10 cargo test --release --workspace --locked --test "$t" -- --nocapture 2>&1 | grep -E "inputs|test result|panicked|FAILED" || true
  echo "$t: $(( $(date +%s) - start )) s"
done
