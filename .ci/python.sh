#!/usr/bin/env bash
# CI for the Python package (crates/python): builds the abi3 wheel with maturin, installs it into a
# fresh venv and runs the README example there, then runs the pytest suite (env_checker, seeding vs
# the Rust side, vector env == N single envs, SB3 PPO, store round trip) in the test venv.
#
# Needs the release build of `cargo test` (target/release/mesalab and the rust_trace example are
# built here if missing). The test venv (torch + SB3 ≈ 5 GB) lives outside the clone, in
# $MESALAB_PY_VENV or ~/.cache/mesalab-ci/py-<hash of requirements.txt>, and is reused while it
# imports; every other venv and file is made fresh under a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
REQ=crates/python/pytests/requirements.txt
HASH="$(sha256sum "$REQ" | cut -c1-12)"
VENV="${MESALAB_PY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/mesalab-ci/py-$HASH}"
WORK="$(mktemp -d /tmp/mesalab-python-ci.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
t0=$SECONDS
phase() { echo "== python: $1 (t=$((SECONDS - t0)) s)"; }

phase "Rust binaries the tests compare against"
cargo build --release --workspace --locked --bin mesalab --example rust_trace

phase "test venv $VENV"
if ! "$VENV/bin/python" -c "import gymnasium, numpy, pandas, pytest, maturin, stable_baselines3, torch" 2>/dev/null; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
fi

phase "wheel (maturin, abi3)"
"$VENV/bin/maturin" build --release --locked -q -m crates/python/Cargo.toml -o "$WORK/wheels"
WHEEL="$(ls "$WORK"/wheels/mesalab-*-abi3-*.whl)"

phase "pip install $(basename "$WHEEL") into a fresh venv; the README example"
python3 -m venv "$WORK/fresh"
"$WORK/fresh/bin/pip" install -q --disable-pip-version-check --no-compile "$WHEEL"
target/release/mesalab run icl-gd --quick --seeds 1 --store "$WORK/example.sqlite" --out "$WORK/example-run" \
  --set train.steps=20 --set eval.validation_tasks=200 --set eval.fit_tasks=200 --set eval.ood_tasks=100 \
  --set eval.sensitivity_tasks=100 --set inside.probe_tasks=200 --set inside.patch_tasks=50 \
  >"$WORK/example-run.log" 2>&1 || { cat "$WORK/example-run.log"; exit 1; }
(cd "$WORK" && "$WORK/fresh/bin/python" "$ROOT/crates/python/examples/quickstart.py" "$WORK/example.sqlite")

phase "pytest"
"$VENV/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$WHEEL"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider crates/python/pytests
phase "done"
