#!/usr/bin/env python3
"""Low-communication training on this machine (issue 7): loss against tokens and against bytes
communicated for synchronous data parallelism, DiLoCo, Streaming DiLoCo and NoLoCo.

    python3 bench/outer/run_bench.py [--engine build/bin/engine] [--workers 4] [--steps 300]
                                     [--inner-steps 10] [--json out.json]

Every method trains the same model on the same data with `engine train` under mpirun, W
oversubscribed ranks on this machine, each rank one worker (dp = W, tp = pp = 1):
  - model: the built-in `tiny` preset (2 layers, hidden 64, 4 heads, byte vocabulary 256,
    sequence 64), fp32, AdamW (lr 3e-3, 10 warm-up steps, cosine to 0.1), clip 1.0;
  - data: the built-in synthetic corpus (a Markov chain of known entropy; the JSON reports it);
  - global batch 4 sequences per worker (16 with 4 workers), so every method sees the same
    tokens per step: steps x global_batch x 64;
  - none: a gradient all-reduce every step; diloco / noloco: H = --inner-steps with their
    reference outer optimizers (0.7 / 0.9, 0.7 / 0.5; NoLoCo groups of 2); streaming-diloco:
    H = --inner-steps, 2 fragments, delay 1, mix 0.5, fp32 and int4 exchanges.
Bytes communicated: what one worker sends to the others (the engine's `worker_bytes_sent`,
ring-equivalent: an all-reduce of S bytes over n workers counts 2 (n-1)/n S).

Prints the tables as Markdown (the numbers come from the runs) and writes every run's JSON with
--json. Only the standard library.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

SCENARIO = """name: outer-bench
model: {{preset: tiny}}
cluster: {{gpu: cpu, nodes: 1, gpus_per_node: {workers}, threads_per_rank: 1}}
strategy:
  tp: 1
  pp: 1
  dp: {workers}
  micro_batch: 4
  global_batch: {global_batch}
  precision: fp32
  optimizer: adamw
  outer: {outer}
training:
  steps: {steps}
  lr: 3e-3
  warmup_steps: 10
  lr_schedule: cosine
  grad_clip: 1.0
  weight_decay: 0.0
  seed: 1234
  data: synthetic
  eval_batches: 4
"""


def methods(inner_steps):
    h = inner_steps
    return [
        ("DP (none)", "{method: none}"),
        ("DiLoCo", f"{{method: diloco, inner_steps: {h}}}"),
        ("Streaming DiLoCo fp32", f"{{method: streaming-diloco, inner_steps: {h}, fragments: 2, delay: 1, mix: 0.5}}"),
        ("Streaming DiLoCo int4",
         f"{{method: streaming-diloco, inner_steps: {h}, fragments: 2, delay: 1, mix: 0.5, quantize: int4}}"),
        ("NoLoCo", f"{{method: noloco, inner_steps: {h}, group_size: 2}}"),
    ]


def run(engine, mpirun, workers, scenario_path):
    command = [mpirun, "-np", str(workers), "--oversubscribe", "--bind-to", "none", "--mca", "pml", "ob1",
               "--mca", "btl", "self,vader", "--mca", "btl_vader_single_copy_mechanism", "none",
               engine, "train", scenario_path, "--json", "--no-db", "--quiet"]
    environment = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    if done.returncode != 0:
        sys.exit(f"engine train failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout)


def smoothed(losses, step, window=10):
    """Mean training loss over the `window` steps ending at `step` (1-based)."""
    part = losses[max(0, step - window):step]
    return sum(part) / len(part)


def human(n):
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", default=os.path.join(ROOT, "build", "bin", "engine"))
    parser.add_argument("--mpirun", default=shutil.which("mpirun") or "mpirun")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--inner-steps", type=int, default=10)
    parser.add_argument("--json", help="write every run's engine JSON here")
    args = parser.parse_args()

    tokens_per_step = 4 * args.workers * 64
    results = []
    with tempfile.TemporaryDirectory(prefix="tandem-outer-bench-") as directory:
        for name, outer in methods(args.inner_steps):
            path = os.path.join(directory, "scenario.yaml")
            with open(path, "w") as handle:
                handle.write(SCENARIO.format(workers=args.workers, global_batch=4 * args.workers, outer=outer,
                                             steps=args.steps))
            print(f"running {name} ...", file=sys.stderr, flush=True)
            results.append((name, outer, run(args.engine, args.mpirun, args.workers, path)))

    steps = args.steps
    checkpoints = [steps // 4, steps // 2, 3 * steps // 4, steps]
    entropy = results[0][2].get("entropy_nats_per_token")
    print(f"W = {args.workers} workers (mpirun -np {args.workers}, oversubscribed), H = {args.inner_steps}, "
          f"{steps} steps, {tokens_per_step} tokens per step; data entropy {entropy:.4f} nats/token\n")
    print("Training loss (mean of the 10 steps ending there) against tokens:\n")
    header = "| method | " + " | ".join(f"{s * tokens_per_step / 1e3:.0f}k tokens" for s in checkpoints) + \
             " | final val loss | bytes sent per worker | per step | step time |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name, _, r in results:
        losses = r["losses"]
        sent = r["worker_bytes_sent"]
        cells = [f"{smoothed(losses, s):.4f}" for s in checkpoints]
        print(f"| {name} | " + " | ".join(cells) + f" | {r['final_val_loss']:.4f} | {human(sent[-1])} | "
              f"{human(sent[-1] / len(sent))} | {r['step_time_s'] * 1e3:.1f} ms |")

    # Loss against bytes: the loss each method had reached when it had sent a given amount.
    budgets = sorted({r["worker_bytes_sent"][-1] for _, _, r in results if r["worker_bytes_sent"][-1] > 0})
    print("\nTraining loss (mean of the 10 steps ending there) at the last step by which a worker had sent at "
          "most B bytes (- : its first step already sent more):\n")
    header = "| method | " + " | ".join(human(b) for b in budgets) + " |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name, _, r in results:
        sent = r["worker_bytes_sent"]
        cells = []
        for budget in budgets:
            within = [i for i, b in enumerate(sent) if b <= budget * (1 + 1e-9)]
            last = within[-1] + 1 if within else 0
            cells.append(f"{smoothed(r['losses'], last):.4f} (step {last})" if last > 0 else "-")
        print(f"| {name} | " + " | ".join(cells) + " |")

    if args.json:
        with open(args.json, "w") as handle:
            json.dump([{"method": name, "outer": outer, "result": r} for name, outer, r in results], handle, indent=1)


if __name__ == "__main__":
    main()
