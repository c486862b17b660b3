#!/usr/bin/env bash
# Side by side, in one run: mesalab PPO vs a CleanRL-style PyTorch PPO (bench/cleanrl_ppo.py) on
# CartPole-v1 with CleanRL ppo.py's hyperparameters and network (4 envs x 128 steps, 64-64 tanh
# actor and critic, ...). Prints the return-vs-steps curves of every seed (recent return at every
# EVERY steps), the training wall clock of every run and the CleanRL/mesalab wall-clock ratio.
#
#   bench/cleanrl_side_by_side.sh                 # SEEDS="1 2" STEPS=500000 EVERY=50000
#   SEEDS="1 2 3 4 5" bench/cleanrl_side_by_side.sh
#
# Creates a venv under /tmp (reused on later runs) and `pip install gymnasium torch numpy` into it
# (PyPI; torch is a large download). Both sides run single-threaded (THREADS=1 for torch), one run
# at a time, so the ratio is per core.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-/tmp/mesalab-cleanrl-venv}"
SEEDS="${SEEDS:-1 2}"
STEPS="${STEPS:-500000}"
EVERY="${EVERY:-50000}"
THREADS="${THREADS:-1}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="$(mktemp -d /tmp/mesalab-ppo-sbs.XXXXXX)"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -c "import gymnasium, torch, numpy" 2>/dev/null || "$VENV/bin/pip" install -q gymnasium torch numpy

echo "== building mesalab ppo_cartpole example" >&2
cargo build --release -q -p mesalab-train --example ppo_cartpole
PPO="$CARGO_TARGET_DIR/release/examples/ppo_cartpole"

for seed in $SEEDS; do
  echo "== seed $seed: mesalab" >&2
  "$PPO" "$seed" "$STEPS" "$EVERY" | tee "$OUT/mesalab-$seed.txt" >&2
  echo "== seed $seed: cleanrl (PyTorch, $THREADS thread)" >&2
  "$VENV/bin/python" "$ROOT/bench/cleanrl_ppo.py" --seed "$seed" --total-timesteps "$STEPS" --every "$EVERY" \
    --threads "$THREADS" | tee "$OUT/cleanrl-$seed.txt" >&2
done

# Curves: one column per (impl, seed), one row per checkpoint.
python3 - "$OUT" $SEEDS <<'PY'
import re, sys
out, seeds = sys.argv[1], sys.argv[2:]
def read(impl, seed):
    rows, wall = [], None
    for line in open(f"{out}/{impl}-{seed}.txt"):
        kv = dict(re.findall(r"(\w+)=(\S+)", line))
        if line.startswith("step="):
            rows.append((int(kv["step"]), float(kv["return"])))
        elif line.startswith("done"):
            wall = float(kv["wall_s"])
    return rows, wall
runs = {(i, s): read(i, s) for i in ("mesalab", "cleanrl") for s in seeds}
cols = [(i, s) for i in ("mesalab", "cleanrl") for s in seeds]
print("recent return (episodes finished in the last 10 updates) at each checkpoint")
print("checkpoint " + " ".join(f"{i[:7]}:{s:>3}" for i, s in cols))
n = min(len(runs[c][0]) for c in cols)
for k in range(n):
    step = runs[cols[0]][0][k][0]
    print(f"{step:>10} " + " ".join(f"{runs[c][0][k][1]:>11.1f}" for c in cols))
for i in ("mesalab", "cleanrl"):
    walls = [runs[(i, s)][1] for s in seeds]
    print(f"{i:8} training wall clock per seed (s): " + ", ".join(f"{w:.1f}" for w in walls))
m = sum(runs[("mesalab", s)][1] for s in seeds)
c = sum(runs[("cleanrl", s)][1] for s in seeds)
print(f"wall-clock ratio cleanrl/mesalab: {c / m:.1f}x  (same steps, same seeds, one core each)")
PY
echo "raw outputs: $OUT" >&2
