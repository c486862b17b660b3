#!/usr/bin/env bash
# Side by side, in one run: batched env stepping, one thread, NUM_ENVS envs (default 1024) in one
# process, uniformly random actions drawn before timing. mesalab: a VecEnv of each grid env
# (crates/envs/examples/vec_env_speed.rs). PufferLib 2.0.2: Ocean `squared` and `grid`, envs
# looped in C (bench/pufferlib_speed.py; read its docstring for two workarounds the 2.0.2 wheel
# needs). Prints env steps/s (num_envs x batched steps / s, median of REPS) per env, observation
# size and the mesalab/PufferLib ratio for each pair, in two columns:
#   step + obs copy: mesalab VecEnv::step + copying obs() out (as PPO's rollout does);
#                    PufferLib env.step(actions) (the Python wrapper) + copying env.observations out
#   step only:       mesalab VecEnv::step; PufferLib the action copy + the C loop (c_envs.step())
#
#   bench/pufferlib_side_by_side.sh               # NUM_ENVS=1024 REPS=5
#   NUM_ENVS=4096 REPS=9 bench/pufferlib_side_by_side.sh
#
# Creates a venv under /tmp (reused on later runs) and `pip install pufferlib==2.0.2 numpy` into it
# (PyPI; the wheel ships the compiled Ocean modules for CPython 3.11, so python3 must be 3.11).
# Both sides run one after the other on one thread each, so the ratio is per core.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-/tmp/mesalab-puffer-venv}"
NUM_ENVS="${NUM_ENVS:-1024}"
REPS="${REPS:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# The C loops are serial already; this keeps numpy (and anything it links) on one thread too.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMEXPR_NUM_THREADS=1
export PYTHONWARNINGS=ignore
OUT="$(mktemp -d /tmp/mesalab-puffer-sbs.XXXXXX)"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -c "import pufferlib, numpy; assert pufferlib.__version__ == '2.0.2'" 2>/dev/null \
  || "$VENV/bin/pip" install -q pufferlib==2.0.2 numpy

echo "== building mesalab vec_env_speed example" >&2
cargo build --release -q -p mesalab-envs --example vec_env_speed
SPEED="$CARGO_TARGET_DIR/release/examples/vec_env_speed"

echo "== PufferLib 2.0.2 Ocean squared, grid ($NUM_ENVS envs, 1 thread)" >&2
"$VENV/bin/python" "$ROOT/bench/pufferlib_speed.py" --num-envs "$NUM_ENVS" --reps "$REPS" --steps 4000 \
  | tee "$OUT/pufferlib.txt" >&2

echo "== mesalab VecEnv ($NUM_ENVS envs, 1 thread)" >&2
for read in copy none; do
  "$SPEED" --num-envs "$NUM_ENVS" --reps "$REPS" --obs-read "$read"
  # Closest to Ocean grid's locked room: 19x19 level, 7x7 egocentric view.
  "$SPEED" cheese-maze-v1 --num-envs "$NUM_ENVS" --reps "$REPS" --obs-read "$read" \
    --set size=19 --set min_size=19 --set view=egocentric --set view_radius=3
done | tee "$OUT/mesalab.txt" >&2

python3 - "$OUT" <<'PY'
import re, sys
out = sys.argv[1]
def rows(path):
    return [dict(re.findall(r"(\w+)=(\S+)", l)) for l in open(path) if l.startswith(("env=", "side="))]
ours, theirs = {}, {}
for r in rows(f"{out}/mesalab.txt"):
    label = r["env"] + ("" if r["set"] == "none" else " 19x19 ego7x7")
    col = "copy" if r["obs_read"] == "copy" else "only"
    ours.setdefault(label, {"obs": f"{r['obs_shape']} f32 = {r['obs_bytes_per_env']} B", "n": r["num_envs"]})[col] = float(r["sps"])
for r in rows(f"{out}/pufferlib.txt"):
    col = "copy" if r["mode"] == "wrapper" else "only"
    theirs.setdefault(r["env"], {"obs": f"[{r['obs_len']}] u8 = {r['obs_bytes_per_env']} B", "n": r["num_envs"]})[col] = float(r["sps"])
print(f"env steps/s, {next(iter(ours.values()))['n']} envs, 1 thread, median of runs")
print(f"{'side':10} {'env':30} {'obs per env':24} {'step+obs copy':>14} {'step only':>12}")
for side, table in (("mesalab", ours), ("pufferlib", theirs)):
    for env, r in table.items():
        print(f"{side:10} {env:30} {r['obs']:24} {r['copy']:>14,.0f} {r['only']:>12,.0f}")
for col, what in (("copy", "step + obs copy"), ("only", "step only")):
    print(f"ratio mesalab/pufferlib ({what}):  " + "  ".join(f"{'vs ' + p:>12}" for p in theirs))
    for env, r in ours.items():
        print(f"  {env:30}" + "  ".join(f"{r[col] / theirs[p][col]:>11.3f}x" for p in theirs))
PY
echo "raw outputs: $OUT" >&2
