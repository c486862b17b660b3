#!/usr/bin/env bash
# Estimated vs measured peak memory (VmHWM) of small real runs of every experiment, and of larger
# icl-gd / coin-corridor runs where the data dominates. Fails when an estimate is off by more than
# the factor stated in crates/cli/tests/resources.rs.
#   bash bench/memory_estimate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
nice -n 10 cargo test --release --workspace --locked --test resources -- --ignored --nocapture estimate_tracks_measured_peak_rss
