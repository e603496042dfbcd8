#!/usr/bin/env python3
"""PyTorch CPU reference for `npm run bench:train` (issue 6).

Trains the same 4-block CNN as mtl-bench's 'convnet-4' backbone with a linear head (conv3x3 without
bias -> batch-norm -> ReLU -> 2x2 max-pool, widths 32-64-128-128, global average pooling, Adam,
softmax cross-entropy) on random 64x64x3 images and prints one JSON object in the shape
bench-train prints, so the two can be compared side by side.

Run by hand; it is never a dependency of mtl-bench:

    python3 benchmarks/reference/pytorch_cnn.py [--batch 32] [--steps 5] [--repeats 3] [--threads N]

(On Debian: apt-get install python3-torch.)
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time
from reference_cli import cpu_model, non_negative_int, positive_int

try:
    import torch
    from torch import nn
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit("pytorch_cnn.py: PyTorch is not installed (Debian: apt-get install python3-torch)")


def build_network(widths, channels, classes):
    layers = []
    for width in widths:
        # Same epsilon/momentum semantics as Keras' defaults do not matter for speed; keep PyTorch's.
        layers += [
            nn.Conv2d(channels, width, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ]
        channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes)]
    return nn.Sequential(*layers)


def forward_macs_per_image(widths, size, channels, classes):
    """Multiply-accumulates of convolutions and the head, counted like mtl-bench's forwardMacs."""
    macs = 0
    for width in widths:
        macs += size * size * width * 3 * 3 * channels
        channels = width
        size //= 2
    return macs + channels * classes


def median_rate(batch, steps, body, repeats):
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            body()
        rates.append(batch * steps / (time.perf_counter() - start))
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=positive_int, default=32)
    parser.add_argument("--size", type=positive_int, default=64)
    parser.add_argument("--steps", type=positive_int, default=5, help="timed steps per round")
    parser.add_argument("--warmup", type=non_negative_int, default=2)
    parser.add_argument("--repeats", type=positive_int, default=3, help="timed rounds; rates are medians")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch.set_num_threads (default: PyTorch's choice)")
    parser.add_argument("--classes", type=positive_int, default=10)
    args = parser.parse_args()
    if args.size < 16:
        parser.error(f"--size: the network halves its input 4 times and needs at least 16 pixels, got {args.size}")

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    widths = [32, 64, 128, 128]
    model = build_network(widths, 3, args.classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    images = torch.rand(args.batch, 3, args.size, args.size)
    labels = torch.randint(0, args.classes, (args.batch,))

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        loss.item()

    def infer_step():
        with torch.no_grad():
            model(images).sum().item()

    model.train()
    for _ in range(args.warmup):
        train_step()
    train_rounds = []
    infer_rounds = []
    # Interleaved rounds, like bench-train: a burst of outside load spoils one round of each.
    for _ in range(args.repeats):
        model.train()
        train_rounds += median_rate(args.batch, args.steps, train_step, 1)
        model.eval()
        infer_rounds += median_rate(args.batch, args.steps, infer_step, 1)

    macs = forward_macs_per_image(widths, args.size, 3, args.classes)
    train_rate = statistics.median(train_rounds)
    infer_rate = statistics.median(infer_rounds)
    record = {
        "model": "convnet-4 (pytorch reference)",
        "backend": f"pytorch {torch.__version__} cpu",
        "input_size": args.size,
        "batch": args.batch,
        "steps": args.steps,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "train_images_per_s": round(train_rate, 2),
        "infer_images_per_s": round(infer_rate, 2),
        "train_rounds": [round(r, 2) for r in train_rounds],
        "infer_rounds": [round(r, 2) for r in infer_rounds],
        # ru_maxrss is in kilobytes on Linux.
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "forward_mflops_per_image": round(macs * 2 / 1e6, 2),
        "gflops_per_s": round(train_rate * macs * 2 * 3 / 1e9, 3),
        "infer_gflops_per_s": round(infer_rate * macs * 2 / 1e9, 3),
        "machine": f"{os.cpu_count()} x {cpu_model()}",
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
