#!/usr/bin/env python3
"""The twin's accuracy and speed benchmarks (issue 2, "Accuracy and speed").

    python3 bench/sim/run_bench.py [--simrun build-sim/bin/simrun] [--only accuracy|speed] [--jobs N]

Accuracy: every calibration run of shared/reference/PUBLISHED.md, simulated with the built-in
profiles and compared with the published number:
  - Korthikanti et al. 2022, Table 5: iteration time;
  - Narayanan et al. 2021, Table 1: TFLOP/s per GPU computed with the paper's full-recompute
    formula F = 96·B·s·l·h²·(1 + s/(6h) + V/(16·l·h)) from the simulated iteration time, taking
    the best micro-batch size and schedule the twin finds for each row (the scenario's sweep).
Speed: one step of GPT-3 175B on 1024 A100s (must be < 10 s), folded vs --no-fold on 64-256
GPUs (must agree within 1 %), the 100k-GPU all-reduce (must be < 30 s).

Only the standard library; simrun does the work (in child processes, --jobs at a time).
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCENARIOS = os.path.join(HERE, "scenarios")

KORTHIKANTI = [  # (scenario, published iteration time in s)
    ("korthikanti-22b-full.yaml", 1.42),
    ("korthikanti-22b-selective.yaml", 1.10),
    ("korthikanti-175b-full.yaml", 18.13),
    ("korthikanti-175b-selective.yaml", 13.75),
]
NARAYANAN = [  # (scenario, published TFLOP/s per GPU)
    ("narayanan-1.7b.yaml", 137),
    ("narayanan-7.5b.yaml", 142),
    ("narayanan-39.1b.yaml", 138),
    ("narayanan-310b.yaml", 155),
]


def narayanan_flops(batch, s, layers, h, vocab):
    return 96 * batch * s * layers * h * h * (1 + s / (6 * h) + vocab / (16 * layers * h))


def run(simrun, args, timeout=3600):
    env = dict(os.environ)
    start = time.monotonic()
    out = subprocess.run([simrun, *args, "--json", "--no-db", "--quiet"], capture_output=True, text=True,
                         timeout=timeout, env=env)
    wall = time.monotonic() - start
    if out.returncode != 0:
        raise RuntimeError(f"simrun {' '.join(args)} failed ({out.returncode}): {out.stderr.strip()}")
    return json.loads(out.stdout), wall


def model_of(path):
    """The handful of model and batch fields the paper's formula needs, read from the file."""
    import re
    text = open(path).read()
    def field(name):
        m = re.search(r"\b" + name + r":\s*([0-9]+)", text)
        return int(m.group(1)) if m else None
    return field("hidden"), field("layers"), field("vocab"), field("seq_len"), field("global_batch")


def accuracy(simrun, jobs):
    rows = []
    for name, published in KORTHIKANTI:
        result, wall = run(simrun, [os.path.join(SCENARIOS, name)])
        ours = result["step_time_s"]
        rows.append((name, "iteration time s", published, ours, wall, ""))
    for name, published in NARAYANAN:
        path = os.path.join(SCENARIOS, name)
        result, wall = run(simrun, [path, "--jobs", str(jobs)])
        h, layers, vocab, s, batch = model_of(path)
        best = None
        for point in result["results"]:
            if not point["feasible"]:
                continue
            if best is None or point["step_time_s"] < best["step_time_s"]:
                best = point
        if best is None:
            rows.append((name, "TFLOP/s per GPU", published, float("nan"), wall, "no feasible point"))
            continue
        gpus = best["gpus"]
        tflops = narayanan_flops(batch, s, layers, h, vocab) / (best["step_time_s"] * gpus) / 1e12
        choice = " ".join(f"{k.split('.')[-1]}={v}" for k, v in best["overrides"].items())
        rows.append((name, "TFLOP/s per GPU", published, tflops, wall,
                     f"{choice}, step {best['step_time_s']:.2f} s"))
    print("\nAccuracy against shared/reference/PUBLISHED.md")
    print(f"{'run':34} {'metric':18} {'published':>10} {'twin':>10} {'error':>8}  {'sim s':>6}  best point")
    errors = []
    for name, metric, published, ours, wall, note in rows:
        error = 100 * (ours - published) / published
        errors.append(abs(error))
        print(f"{name[:-5]:34} {metric:18} {published:10.2f} {ours:10.2f} {error:+7.1f}%  {wall:6.1f}  {note}")
    print(f"mean absolute error {sum(errors) / len(errors):.2f} %, max {max(errors):.2f} %")
    return errors


def speed(simrun):
    print("\nSpeed")
    result, wall = run(simrun, [os.path.join(SCENARIOS, "gpt3-175b-1024.yaml")])
    sim = result["simulation"]
    print(f"GPT-3 175B, 1024 A100 (TP8 PP8 DP16, 1F1B, mb 1, gb 1536): step {result['step_time_s']:.3f} s, "
          f"simrun wall {wall:.2f} s (simulation {sim['wall_s']:.2f} s, {sim['simulated_ranks']} rank classes, "
          f"{sim['flows']} flows, {sim['collectives_simulated']} collectives simulated, "
          f"{sim['collectives_cached']} replayed)")
    for path, label in [(os.path.join(ROOT, "scenarios", "gpt3-175b-selene.yaml"), "GPT-3 175B Selene, 64 GPUs"),
                        (os.path.join(SCENARIOS, "fold-128.yaml"), "GPT-3 13B-like, 128 GPUs, DP 4"),
                        (os.path.join(SCENARIOS, "fold-256.yaml"), "22B, 256 GPUs, TP 4 PP 4 DP 16")]:
        folded, folded_wall = run(simrun, [path])
        unfolded, unfolded_wall = run(simrun, [path, "--no-fold"])
        a, b = folded["step_time_s"], unfolded["step_time_s"]
        print(f"{label}: folded {a:.4f} s ({folded_wall:.1f} s wall), --no-fold {b:.4f} s ({unfolded_wall:.1f} s wall), "
              f"difference {100 * (a - b) / b:+.3f} %")
    result, wall = run(simrun, [os.path.join(ROOT, "scenarios", "allreduce-100k.yaml")])
    print(f"all-reduce on {result['gpus']} GPUs: simrun wall {wall:.2f} s")
    for row in result["collective"]:
        print(f"  {row['size_bytes']:>12.0f} B  {row['algorithm']:12} {row['time_s'] * 1e3:9.3f} ms  "
              f"busbw {row['busbw_GBps']:7.1f} GB/s")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--simrun", default=os.path.join(ROOT, "build-sim", "bin", "simrun"))
    parser.add_argument("--only", choices=["accuracy", "speed"])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if not os.path.exists(args.simrun):
        sys.exit(f"no simrun at {args.simrun}: build it or pass --simrun")
    if args.only in (None, "accuracy"):
        accuracy(args.simrun, args.jobs)
    if args.only in (None, "speed"):
        speed(args.simrun)


if __name__ == "__main__":
    main()
