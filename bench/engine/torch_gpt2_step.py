#!/usr/bin/env python3
"""Seconds per training step of GPT-2 124M in PyTorch on the CPU — the PyTorch side of the
step-time comparison in bench/engine/README.md.

  torch_gpt2_step.py [--batch 4] [--seq 64] [--steps 3] [--threads 2]

The same model and step as `engine train` / bench_engine_step at the gpt2-124m preset: 12 layers,
12 heads, 768 channels, vocabulary 50257 (embedding padded to 50304 rows, as llm.c and the engine
pad the lm-head), learned positions, pre-LayerNorm blocks, GELU (tanh), causal attention, tied
embeddings, fp32; AdamW (lr 6e-4, weight decay 0.1 on matrices) after global-norm clipping at 1.0,
random tokens. Prints the time of every step and the median over the steps after the first.
Use Debian's python3-torch with BLAS = OpenBLAS (libopenblas0-pthread; with the reference BLAS a
step takes ~30x longer): check `python3 -c "import torch; print(torch.__config__.show())"`.
"""
import argparse
import math
import statistics
import time

import torch
from torch import nn
from torch.nn import functional as F

LAYERS, HEADS, CHANNELS, VOCAB, PADDED_VOCAB, MAX_T = 12, 12, 768, 50257, 50304, 1024


class Block(nn.Module):
    def __init__(self, C: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(C)
        self.qkv = nn.Linear(C, 3 * C)
        self.attn_proj = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C)
        self.fc = nn.Linear(C, 4 * C)
        self.fc_proj = nn.Linear(4 * C, C)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        D = C // self.heads
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, D).transpose(1, 2) for t in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D))
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        scores = scores.masked_fill(~mask, float("-inf"))
        y = F.softmax(scores, dim=-1) @ v
        return self.attn_proj(y.transpose(1, 2).contiguous().view(B, T, C))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.ln_1(x))
        return x + self.fc_proj(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(PADDED_VOCAB, CHANNELS)
        self.wpe = nn.Embedding(MAX_T, CHANNELS)
        self.blocks = nn.ModuleList(Block(CHANNELS, HEADS) for _ in range(LAYERS))
        self.ln_f = nn.LayerNorm(CHANNELS)
        self.lm_head = nn.Linear(CHANNELS, PADDED_VOCAB, bias=False)
        self.lm_head.weight = self.wte.weight  # tied
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * LAYERS) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))[..., :VOCAB]
        return F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1234)
    model = GPT()
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=6e-4)
    generator = torch.Generator().manual_seed(1)
    times = []
    for step in range(args.steps):
        tokens = torch.randint(0, VOCAB, (args.batch, args.seq + 1), generator=generator)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = model(tokens[:, :-1], tokens[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        times.append(time.perf_counter() - start)
        print(f"step {step + 1}: loss {loss.item():.4f}, {times[-1]:.3f} s", flush=True)
    later = times[1:] or times
    print(f"median {statistics.median(later):.3f} s per step (B={args.batch}, T={args.seq}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__})")


if __name__ == "__main__":
    main()
