#!/usr/bin/env python3
"""Side-by-side training throughput: mtl-bench (bench-train, convnet-4) against PyTorch on CPU.

Alternates the two benchmarks for several rounds on the same machine, so that outside load (the
machine may be shared) hits both alike, and prints each round, the medians and the median of the
per-round ratios. Run by hand after `npm run build`, with a Python that has PyTorch:

    /usr/bin/python3 benchmarks/reference/compare_with_pytorch.py [--rounds 5] [--batch 32]
        [--steps 20] [--backend wasm] [--wasm-threads N] [--torch-threads N]

Each side times --steps training steps per round (20 by default: with 5, single rounds on a
shared 2-core machine varied by ±20%).

Output: one JSON line per round, then one summary JSON line.
"""
import argparse
import json
import os
import statistics
import sys
from reference_cli import positive_int, run_json

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "dist", "scripts", "bench-train.js")
TORCH = os.path.join(ROOT, "benchmarks", "reference", "pytorch_cnn.py")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=positive_int, default=5)
    parser.add_argument("--batch", type=positive_int, default=32)
    parser.add_argument("--steps", type=positive_int, default=20)
    parser.add_argument("--backend", default=None, help="bench-train --backend (default: its automatic choice)")
    parser.add_argument("--torch-threads", type=positive_int, default=None, help="PyTorch threads (default: PyTorch's choice)")
    parser.add_argument("--wasm-threads", type=positive_int, default=None, help="bench-train --wasm-threads (default: its choice, the idle cores)")
    args = parser.parse_args()
    if not os.path.exists(BENCH):
        sys.exit(f"compare_with_pytorch.py: {BENCH} is missing; run `npm run build` first")

    node_cmd = ["node", BENCH, "--models", "convnet-4", "--json", "--repeats", "1", "--batch", str(args.batch), "--steps", str(args.steps)]
    if args.backend:
        node_cmd += ["--backend", args.backend]
    if args.wasm_threads:
        node_cmd += ["--wasm-threads", str(args.wasm_threads)]
    torch_cmd = [sys.executable, TORCH, "--repeats", "1", "--batch", str(args.batch), "--steps", str(args.steps)]
    if args.torch_threads:
        torch_cmd += ["--threads", str(args.torch_threads)]

    ours, theirs, ratios = [], [], []
    for round_index in range(args.rounds):
        # Alternate which goes first, so neither always runs right after the other's warm-up.
        pair = [("mtl-bench", node_cmd), ("pytorch", torch_cmd)]
        if round_index % 2:
            pair.reverse()
        results = {name: run_json(command, "compare_with_pytorch.py") for name, command in pair}
        a = results["mtl-bench"]["train_images_per_s"]
        b = results["pytorch"]["train_images_per_s"]
        ours.append(a)
        theirs.append(b)
        ratios.append(a / b)
        print(json.dumps({
            "round": round_index + 1,
            "mtl_bench": {k: results["mtl-bench"].get(k) for k in ("backend", "wasm_threads", "train_images_per_s", "infer_images_per_s", "peak_rss_mb")},
            "pytorch": {k: results["pytorch"][k] for k in ("backend", "threads", "train_images_per_s", "infer_images_per_s", "peak_rss_mb")},
            "train_ratio": round(a / b, 3),
        }), flush=True)
    print(json.dumps({
        "summary": True,
        "rounds": args.rounds,
        "batch": args.batch,
        "mtl_bench_train_images_per_s_median": round(statistics.median(ours), 2),
        "pytorch_train_images_per_s_median": round(statistics.median(theirs), 2),
        "train_ratio_median": round(statistics.median(ratios), 3),
        "train_ratio_min": round(min(ratios), 3),
        "train_ratio_max": round(max(ratios), 3),
    }))


if __name__ == "__main__":
    main()
