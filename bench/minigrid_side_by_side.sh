#!/usr/bin/env bash
# Side by side, in one run: MiniGrid (Python) steps/s vs mesalab cheese-maze steps/s, single core,
# random actions, observation built every step, auto-reset. Prints both and the ratio.
#
#   bench/minigrid_side_by_side.sh            # STEPS=100000 MiniGrid steps, 2M mesalab steps
#
# Creates a venv under /tmp (reused on later runs) and `pip install minigrid` into it.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-/tmp/mesalab-minigrid-venv}"
STEPS="${STEPS:-100000}"
MG_ENV="${MG_ENV:-MiniGrid-FourRooms-v0}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -c "import minigrid" 2>/dev/null || "$VENV/bin/pip" install -q minigrid

echo "== building mesalab env_speed example" >&2
cargo build --release -q -p mesalab-envs --example env_speed
SPEED="$CARGO_TARGET_DIR/release/examples/env_speed"

echo "== MiniGrid ($MG_ENV, 19x19 grid, 7x7 egocentric image obs)" >&2
MG_LINE="$("$VENV/bin/python" "$ROOT/bench/minigrid_speed.py" --env "$MG_ENV" --steps "$STEPS")"
echo "$MG_LINE"
MG="$(sed -E 's/.*steps_per_sec=([0-9.]+).*/\1/' <<<"$MG_LINE")"

run_mesalab() { # label, then --set arguments
  local label="$1"; shift
  local line
  line="$("$SPEED" cheese-maze-v1 2000000 "$@")"
  local ours
  ours="$(sed -E 's/.*steps_per_sec=([0-9.]+).*/\1/' <<<"$line")"
  echo "$line  [$label]"
  awk -v a="$ours" -v b="$MG" -v l="$label" 'BEGIN { printf "ratio mesalab/minigrid (%s): %.0fx\n", l, a / b }'
}

echo "== mesalab cheese-maze-v1" >&2
run_mesalab "19x19 maze, 7x7 egocentric view (closest to MiniGrid)" --set size=19 --set min_size=19 --set view=egocentric --set view_radius=3
run_mesalab "19x19 maze, full view" --set size=19 --set min_size=19
run_mesalab "train split defaults (13x13, mixed sizes, full view)"
