#!/usr/bin/env bash
# Side by side, in one run, on one core: the Python package's native vector env vs
# gymnasium.vector.SyncVectorEnv over the same mesalab env and over MiniGrid (bench/python_vector_env.py).
#
#   bench/python_vector_env.sh            # NUM_ENVS=64
#
# Creates a venv under /tmp (reused on later runs) with gymnasium, numpy, minigrid and maturin,
# builds the mesalab wheel into it, and runs pinned to CPU 0.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-/tmp/mesalab-pyvec-venv}"
NUM_ENVS="${NUM_ENVS:-64}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -c "import gymnasium, minigrid, maturin, pandas" 2>/dev/null \
  || "$VENV/bin/pip" install -q gymnasium numpy pandas minigrid maturin
echo "== building the mesalab wheel" >&2
OUT="$(mktemp -d /tmp/mesalab-pyvec-wheel.XXXXXX)"
"$VENV/bin/maturin" build --release --locked -q -m "$ROOT/crates/python/Cargo.toml" -o "$OUT" >&2
"$VENV/bin/pip" install -q --force-reinstall --no-deps "$OUT"/mesalab-*.whl
rm -rf "$OUT"
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c 0 "$VENV/bin/python" "$ROOT/bench/python_vector_env.py" --num-envs "$NUM_ENVS" "$@"
