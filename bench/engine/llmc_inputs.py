#!/usr/bin/env python3
"""Inputs for timing llm.c's CPU reference (train_gpt2.c) at the GPT-2 124M shape.

llm.c's released weights cannot be downloaded here, and its timing does not depend on their
values, so this writes a checkpoint in its format with random-initialised weights, plus token
shards with random tokens for its data loader:

  llmc_inputs.py DIR [--seed 1234] [--tokens 1000000]

writes, in DIR (llm.c is run from DIR):
  gpt2_124M.bin                                    the checkpoint (≈ 498 MB)
  dev/data/tinyshakespeare/tiny_shakespeare_train.bin, ..._val.bin   token shards

Checkpoint format (llm.c train_gpt2.c, gpt2_build_from_checkpoint): a header of 256 int32 —
magic 20240326, version 3, max_seq_len 1024, vocab 50257, layers 12, heads 12, channels 768,
padded vocab 50304 — then the float32 parameters in llm.c's order (fill_in_parameter_sizes):
wte (Vp,C), wpe (maxT,C), ln1w (L,C), ln1b (L,C), qkvw (L,3C,C), qkvb (L,3C), attprojw (L,C,C),
attprojb (L,C), ln2w (L,C), ln2b (L,C), fcw (L,4C,C), fcb (L,4C), fcprojw (L,C,4C),
fcprojb (L,C), lnfw (C), lnfb (C). Weights are seeded normal(0, 0.02) (the padded vocabulary
rows zero, as llm.c writes them), LayerNorm gains 1, biases 0.

Token shard format (llm.c dataloader.h): a header of 256 int32 — magic 20240520, version 1,
number of tokens — then the tokens as uint16.

No llm.c code is used or needed: only the file formats above.
"""
import argparse
import os

import numpy as np

MAX_T, VOCAB, LAYERS, HEADS, CHANNELS, PADDED_VOCAB = 1024, 50257, 12, 12, 768, 50304


def write_checkpoint(path: str, seed: int) -> int:
    rng = np.random.default_rng(seed)
    C, L, V, Vp = CHANNELS, LAYERS, VOCAB, PADDED_VOCAB
    header = np.zeros(256, dtype=np.int32)
    header[:8] = [20240326, 3, MAX_T, V, L, HEADS, C, Vp]

    def normal(*shape):
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)

    wte = normal(Vp, C)
    wte[V:] = 0.0
    tensors = [
        wte,                                   # wte
        normal(MAX_T, C),                      # wpe
        np.ones((L, C), np.float32),           # ln1w
        np.zeros((L, C), np.float32),          # ln1b
        normal(L, 3 * C, C),                   # qkvw
        np.zeros((L, 3 * C), np.float32),      # qkvb
        normal(L, C, C),                       # attprojw
        np.zeros((L, C), np.float32),          # attprojb
        np.ones((L, C), np.float32),           # ln2w
        np.zeros((L, C), np.float32),          # ln2b
        normal(L, 4 * C, C),                   # fcw
        np.zeros((L, 4 * C), np.float32),      # fcb
        normal(L, C, 4 * C),                   # fcprojw
        np.zeros((L, C), np.float32),          # fcprojb
        np.ones(C, np.float32),                # lnfw
        np.zeros(C, np.float32),               # lnfb
    ]
    count = 0
    with open(path, "wb") as f:
        f.write(header.tobytes())
        for t in tensors:
            f.write(np.ascontiguousarray(t, dtype=np.float32).tobytes())
            count += t.size
    return count


def write_tokens(path: str, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    header = np.zeros(256, dtype=np.int32)
    header[:3] = [20240520, 1, count]
    tokens = rng.integers(0, VOCAB, size=count, dtype=np.uint16)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(tokens.tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", help="directory to write into (run llm.c from there)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--tokens", type=int, default=1_000_000, help="tokens per shard")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    n = write_checkpoint(os.path.join(args.dir, "gpt2_124M.bin"), args.seed)
    shards = os.path.join(args.dir, "dev", "data", "tinyshakespeare")
    write_tokens(os.path.join(shards, "tiny_shakespeare_train.bin"), args.tokens, args.seed + 1)
    write_tokens(os.path.join(shards, "tiny_shakespeare_val.bin"), args.tokens // 10, args.seed + 2)
    print(f"wrote {n} parameters to {args.dir}/gpt2_124M.bin and token shards under {shards}")


if __name__ == "__main__":
    main()
