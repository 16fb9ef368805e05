#!/usr/bin/env python3
"""Every inner optimizer on this machine (issue 6): loss after the same number of tokens, seconds
per step and the optimizer state the engine allocated, on the synthetic corpus and on real text.

    python3 bench/optim/run_bench.py [--engine build/bin/engine] [--steps 300]
                                     [--text ../shared/data/tinyshakespeare/input.txt] [--json out.json]

Every optimizer trains the same model on the same tokens with `engine train` on one process:
  - model: the built-in `tiny` preset (2 layers, hidden 64, 4 heads, byte vocabulary 256,
    sequence 64, GELU, LayerNorm, learned positions), fp32;
  - batch 8 sequences per step (512 tokens), --steps steps, 10 warm-up steps then cosine decay;
  - each optimizer at its reference defaults (strategy/optimizer_catalog.cpp): no training.lr or
    training.weight_decay is set, so the catalog's learning rate and decay apply;
  - grad clip 1.0, seed 1234, 2 kernel threads;
  - data: the built-in synthetic corpus (a Markov chain of known entropy, printed) and, when the
    text file exists, byte-level tokens of that text (tinyshakespeare: 1.1 MB; the last 10 % is
    the validation split).
Prints the tables as Markdown (the numbers come from the runs). Only the standard library.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

OPTIMIZERS = ["adamw", "adamw-hf", "lion", "adan", "muon", "muonbp", "apollo", "apollo-mini", "galore", "smmf"]

SCENARIO = """name: optimizer-bench-{optimizer}
model: {{preset: tiny}}
cluster: {{gpu: cpu, nodes: 1, gpus_per_node: 1, threads_per_rank: 2}}
strategy:
  tp: 1
  pp: 1
  dp: 1
  micro_batch: 8
  global_batch: 8
  precision: fp32
  optimizer: {optimizer}
training:
  steps: {steps}
  warmup_steps: 10
  lr_schedule: cosine
  grad_clip: 1.0
  seed: 1234
  data: {data}
  eval_batches: 8
"""


def run(engine, scenario_path):
    command = [engine, "train", scenario_path, "--json", "--no-db", "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"engine train failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout)


def smoothed(losses, step, window=10):
    """Mean training loss over the `window` steps ending at `step` (1-based)."""
    part = losses[max(0, step - window):step]
    return sum(part) / len(part)


def human(n):
    for unit, size in (("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def table(name, results, steps):
    checkpoints = [steps // 4, steps // 2, steps]
    tokens_per_step = 8 * 64
    print(f"\n{name}: training loss (mean of the 10 steps ending there), final validation loss, median "
          f"step time, optimizer state\n")
    header = "| optimizer | " + " | ".join(f"{s * tokens_per_step / 1e3:.0f}k tokens" for s in checkpoints) + \
             " | final val loss | step time | state |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for optimizer, r in results:
        cells = [f"{smoothed(r['losses'], s):.4f}" for s in checkpoints]
        print(f"| {optimizer} | " + " | ".join(cells) + f" | {r['final_val_loss']:.4f} | "
              f"{r['step_time_s'] * 1e3:.1f} ms | {human(r.get('optimizer_state_bytes', 0))} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", default=os.path.join(ROOT, "build", "bin", "engine"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--text", default=os.path.join(ROOT, "..", "shared", "data", "tinyshakespeare", "input.txt"))
    parser.add_argument("--only", nargs="*", default=OPTIMIZERS, help="a subset of the optimizers")
    parser.add_argument("--json", help="write every run's engine JSON here")
    args = parser.parse_args()

    datasets = [("synthetic", "synthetic")]
    if os.path.exists(args.text):
        datasets.append((os.path.basename(os.path.dirname(os.path.abspath(args.text))), os.path.abspath(args.text)))
    else:
        print(f"note: {args.text} not found; only the synthetic corpus is run", file=sys.stderr)

    everything = {}
    with tempfile.TemporaryDirectory(prefix="tandem-optim-bench-") as directory:
        for data_name, data in datasets:
            results = []
            for optimizer in args.only:
                path = os.path.join(directory, "scenario.yaml")
                with open(path, "w") as handle:
                    handle.write(SCENARIO.format(optimizer=optimizer, steps=args.steps, data=data))
                print(f"running {optimizer} on {data_name} ...", file=sys.stderr, flush=True)
                results.append((optimizer, run(args.engine, path)))
            everything[data_name] = results

    print(f"`tiny` preset, {args.steps} steps of 512 tokens, one process with 2 kernel threads")
    for data_name, results in everything.items():
        title = data_name
        entropy = results[0][1].get("entropy_nats_per_token")
        if entropy:
            title += f" (entropy rate {entropy:.4f} nats/token: the best possible loss)"
        table(title, results, args.steps)

    if args.json:
        with open(args.json, "w") as handle:
            json.dump({name: [{"optimizer": o, "result": r} for o, r in results]
                       for name, results in everything.items()}, handle, indent=1)


if __name__ == "__main__":
    main()
