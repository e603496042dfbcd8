#!/usr/bin/env python3
"""One study cell side by side: mtl-bench (`npm run bench:study` on one cell) against PyTorch (pytorch_cell.py).

Alternates the two for several rounds on the same machine, so that outside load (the machine may
be shared) hits both alike, and prints each round, the medians and the medians of the per-round
ratios. The cell is one of a benchmark's (default: the package's benchmarks/openmoji.yaml (32×32, 20 epochs), regime
full, setting mtl, seed 1); both sides run it with the same number of threads (mtl-bench's wasm
threads, PyTorch's intra-op threads). Run by hand after `npm run build`, with a Python that has
PyTorch and PyYAML:

    /usr/bin/python3 benchmarks/reference/compare_cell_with_pytorch.py [FILE] [--rounds 3]
        [--regime full] [--setting mtl] [--seed 1] [--epochs N] [--threads N]

Figures of a side: the cell's wall time (mtl-bench: timings.json of the cell, from its data to its
test pass; PyTorch: the same span, from random data in memory), its trainSeconds (every epoch's
steps and validation, plus the test pass) and its training images/s (steps only). Ratios are
mtl-bench's speed relative to PyTorch's (PyTorch seconds / mtl-bench seconds; images/s over
images/s): 0.5 means mtl-bench takes twice as long.

Output: one JSON line per round, then one summary JSON line.
"""
import argparse
import json
import os
import shutil
import statistics
import sys
from reference_cli import positive_int, run_json

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH_STUDY = os.path.join(ROOT, "dist", "scripts", "bench-study.js")
TORCH_CELL = os.path.join(ROOT, "benchmarks", "reference", "pytorch_cell.py")
STUDY = os.path.join(ROOT, "benchmarks", "openmoji.yaml")


def mtl_bench_cell(command):
    """bench-study on one cell, kept just long enough to read the cell's history; its folder is removed."""
    record = run_json(command, "compare_cell_with_pytorch.py")
    if record["cells"] != 1:
        sys.exit(f"compare_cell_with_pytorch.py: expected one cell, bench-study ran {record['cells']}")
    run_dir = record["runs"][0]["runDir"]
    try:
        cells = [name for name in os.listdir(run_dir) if os.path.exists(os.path.join(run_dir, name, "history.json"))]
        with open(os.path.join(run_dir, cells[0], "history.json"), encoding="utf-8") as file:
            history = json.load(file)
    finally:
        # bench-study's fresh folder (mtl-bench-study-XXXX) holds the benchmark's folder.
        parent = os.path.dirname(run_dir)
        if os.path.basename(parent).startswith("mtl-bench-study-"):
            shutil.rmtree(parent, ignore_errors=True)
    # Each epoch's rate is its images over its steps' time: the cell's rate is their harmonic mean.
    rate = len(history) / sum(1 / epoch["imagesPerSecond"] for epoch in history)
    return {
        "backend": record["backend"],
        "threads": (record.get("wasmThreads") or {}).get("threads"),
        "wallSeconds": record["sumCellWallSeconds"],
        "trainSeconds": record["sumCellTrainSeconds"],
        "train_images_per_s": round(rate, 1),
        "processSeconds": record["wallSeconds"],
        "loadAverageAtStart": record["runs"][0]["loadAverageAtStart"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file", nargs="?", default=STUDY, help="benchmark YAML file (default: the package's benchmarks/openmoji.yaml, whose full regime the quick study lacks)")
    parser.add_argument("--rounds", type=positive_int, default=3)
    parser.add_argument("--regime", default="full")
    parser.add_argument("--setting", default="mtl", choices=["mtl", "stl"])
    parser.add_argument("--seed", type=positive_int, default=1)
    parser.add_argument("--epochs", type=positive_int, default=None, help="instead of the benchmark's, on both sides")
    parser.add_argument("--threads", type=positive_int, default=os.cpu_count(), help="threads of each side (default: the cores)")
    args = parser.parse_args()
    if not os.path.exists(BENCH_STUDY):
        sys.exit(f"compare_cell_with_pytorch.py: {BENCH_STUDY} is missing; run `npm run build` first")

    epochs = ["--epochs", str(args.epochs)] if args.epochs else []
    node_cmd = [
        "node", BENCH_STUDY, args.file, "--regimes", args.regime, "--settings", args.setting, "--seeds", str(args.seed),
        "--wasm-threads", str(args.threads), "--keep", *epochs,
    ]
    torch_cmd = [
        sys.executable, TORCH_CELL, args.file, "--regime", args.regime, "--setting", args.setting, "--seed", str(args.seed),
        "--threads", str(args.threads), *epochs,
    ]

    rounds = []
    for round_index in range(args.rounds):
        # Alternate which goes first, so neither always runs right after the other.
        order = ["mtl-bench", "pytorch"] if round_index % 2 == 0 else ["pytorch", "mtl-bench"]
        results = {}
        for side in order:
            results[side] = mtl_bench_cell(node_cmd) if side == "mtl-bench" else run_json(torch_cmd, "compare_cell_with_pytorch.py")
        ours, theirs = results["mtl-bench"], results["pytorch"]
        entry = {
            "round": round_index + 1,
            "mtl_bench": ours,
            "pytorch": {k: theirs[k] for k in ("backend", "threads", "wallSeconds", "trainSeconds", "train_images_per_s")}
            | {"loadAverageAtStart": theirs["machine"]["loadAverageAtStart"]},
            "wall_ratio": round(theirs["wallSeconds"] / ours["wallSeconds"], 3),
            "train_ratio": round(theirs["trainSeconds"] / ours["trainSeconds"], 3),
            "images_per_s_ratio": round(ours["train_images_per_s"] / theirs["train_images_per_s"], 3),
        }
        rounds.append(entry)
        print(json.dumps(entry), flush=True)

    def median(side, key):
        return round(statistics.median(r[side][key] for r in rounds), 2)

    def ratios(key):
        values = [r[key] for r in rounds]
        return {"median": round(statistics.median(values), 3), "min": min(values), "max": max(values)}

    last = rounds[-1]
    print(json.dumps({
        "summary": True,
        "cell": f"{args.regime}.{args.setting}.seed{args.seed}",
        "file": os.path.relpath(args.file, ROOT) if os.path.abspath(args.file).startswith(ROOT) else args.file,
        "rounds": args.rounds,
        "threads": args.threads,
        "mtl_bench": {"backend": last["mtl_bench"]["backend"], **{k: median("mtl_bench", k) for k in ("wallSeconds", "trainSeconds", "train_images_per_s")}},
        "pytorch": {"backend": last["pytorch"]["backend"], **{k: median("pytorch", k) for k in ("wallSeconds", "trainSeconds", "train_images_per_s")}},
        "wall_ratio": ratios("wall_ratio"),
        "train_ratio": ratios("train_ratio"),
        "images_per_s_ratio": ratios("images_per_s_ratio"),
    }))


if __name__ == "__main__":
    main()
