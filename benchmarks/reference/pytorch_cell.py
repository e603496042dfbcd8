#!/usr/bin/env python3
"""PyTorch CPU reference for one study cell (issue 16): the same network and schedule as mtl-bench trains.

Times one cell of a benchmark (by default the package's benchmarks/openmoji.yaml (32×32, 20 epochs), regime `full`,
setting `mtl`, seed 1) the way mtl-bench's trainer runs it, and prints one JSON object in the
terms of `npm run bench:study` (wallSeconds, trainSeconds, images/s).

Nothing of the cell is copied by hand: mtl-bench resolves it. The script asks
`mtl-bench run FILE --dry-run --json` for the cell's configuration (backbone, input size, batch,
epochs, optimizer, learning rate and schedule, weight decay, crop padding and flip, the tasks and
their kinds) and the split sizes, and `mtl-bench datasets info DATASET --json` for each task's
width (8 groups, 32 tags on OpenMoji); datasets.yaml gives the image channels. So it needs the
build (`npm run build`) and the dataset's index in MTL_BENCH_HOME (`datasets info` builds it for a
package dataset such as OpenMoji).

What is the same as mtl-bench's cell:
- the network of src/model/backbones.ts (`convnet-s`: 3 blocks of conv3x3 without bias ->
  batch norm (eps 1e-5, update rate 0.1) -> ReLU -> 2x2 max-pool, widths 32-64-128; `convnet-4`:
  32-64-128-128), global average pooling, one linear head per task; `mtl` is one network with
  all heads (softmax cross-entropy for categorical tasks, sigmoid cross-entropy for multi-label
  ones, summed), `stl` one network per task, trained one after the other;
- Adam (beta 0.9/0.999, eps 1e-8) with weight decay added to the gradient of convolution and
  linear kernels only, the learning rate set every step (cosine to 0 over all steps, or constant,
  or step decay);
- batches of the samples in a fresh random order each epoch, every full batch plus the last
  partial one unless it holds a single sample; each batch's uint8 pixels scaled to [0, 1] and
  augmented per sample (random shift by up to `crop_padding` pixels with the edge repeated, and a
  horizontal flip when `flip`);
- after every epoch a validation pass (evaluation batches of max(64, batch)) and a copy of the
  weights when the validation score improves; at the end the best weights are restored and
  tested once on the test split; the loss is read back after every step.
What differs: the images and labels are random, of the dataset's split sizes, image size and task
widths (timing only: no accuracy is meaningful), already in memory; no checkpoint file is
written. Only the `full` regime (every training image carries every label) is supported.

Run by hand; it is never a dependency of mtl-bench:

    /usr/bin/python3 benchmarks/reference/pytorch_cell.py [FILE] [--regime full] [--setting mtl]
        [--seed 1] [--epochs N] [--threads N]
"""
import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from reference_cli import cpu_model, positive_int

try:
    import torch
    import yaml
    from torch import nn
    from torch.nn import functional as F
except ImportError as missing:  # pragma: no cover - depends on the machine
    sys.exit(f"pytorch_cell.py: {missing.name} is not installed (Debian: apt-get install python3-torch python3-yaml)")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MTL_BENCH = os.path.join(ROOT, "bin", "mtl-bench.js")
STUDY = os.path.join(ROOT, "benchmarks", "openmoji.yaml")

# src/model/backbones.ts, CONVNET_SPECS (one convolution per block in both).
CONVNET_WIDTHS = {"convnet-s": [32, 64, 128], "convnet-4": [32, 64, 128, 128]}


def fail(message):
    sys.exit(f"pytorch_cell.py: error: {message}")


def mtl_bench_json(args):
    """JSON lines printed by `node bin/mtl-bench.js ARGS`; its one error line on failure."""
    if not os.path.exists(os.path.join(ROOT, "dist", "src", "cli", "main.js")):
        fail(f"{ROOT}/dist is missing; run `npm run build` first")
    done = subprocess.run(["node", MTL_BENCH, *args], capture_output=True, text=True, check=False, env={**os.environ, "NO_COLOR": "1"})
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        fail(f"mtl-bench {args[0]} failed: {last}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def resolve_cell(args):
    """The cell's configuration, split sizes, task widths and channels, as mtl-bench sees them."""
    command = ["run", args.file, "--regimes", args.regime, "--settings", args.setting, "--seeds", str(args.seed), "--dry-run", "--json"]
    if args.epochs:
        command += ["--epochs", str(args.epochs)]
    events = mtl_bench_json(command)
    plan = next((e for e in events if e.get("event") == "plan"), None)
    if plan is None or len(plan["cells"]) != 1:
        fail(f"{args.file}: expected one cell for --regime {args.regime} --setting {args.setting} --seed {args.seed}")
    config = plan["config"]
    regime = config["regimes"][0]
    if regime["spec"]["kind"] != "full":
        fail(f'regime "{regime["name"]}" is of kind "{regime["spec"]["kind"]}"; only "full" regimes are timed here')
    backbone = plan["backbone"]["name"]
    if backbone not in CONVNET_WIDTHS or plan["backbone"].get("pretrained"):
        fail(f'backbone "{backbone}": only {", ".join(CONVNET_WIDTHS)} are timed here')
    dataset = plan["datasets"][0]["id"]
    info = mtl_bench_json(["datasets", "info", dataset, "--json"])[0]
    widths = {t["name"]: t["labels"] for t in info["tasks"]}
    splits = {s["split"]: s["count"] for s in info["splits"]}
    with open(os.path.join(ROOT, "datasets.yaml"), encoding="utf-8") as manifest:
        entries = yaml.safe_load(manifest)["datasets"]
    entry = next((d for d in entries if d.get("id") == dataset), None)
    channels = (entry or {}).get("image", {}).get("channels")
    if not channels:
        fail(f"datasets.yaml: no image channels for dataset {dataset}")
    tasks = [{"name": t["name"], "kind": t["kind"], "units": widths[t["name"]]} for t in config["tasks"]]
    return {
        "benchmark": plan["benchmark"],
        "cell": plan["cells"][0]["id"],
        "dataset": dataset,
        "backbone": backbone,
        "size": config["input"]["size"],
        "channels": channels,
        "train": config["train"],
        "tasks": tasks,
        "splits": splits,
    }


class CellNetwork(nn.Module):
    def __init__(self, widths, channels, heads):
        super().__init__()
        layers = []
        for width in widths:
            layers += [
                nn.Conv2d(channels, width, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(width, eps=1e-5, momentum=0.1),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.backbone = nn.Sequential(*layers)
        self.heads = nn.ModuleList(nn.Linear(channels, task["units"]) for task in heads)

    def forward(self, images):
        features = self.backbone(images)
        return [head(features) for head in self.heads]


def random_split(count, cell, generator):
    """Random pixels and labels of the cell's image size and task widths."""
    size = cell["size"]
    images = torch.randint(0, 256, (count, cell["channels"], size, size), dtype=torch.uint8, generator=generator)
    labels = {}
    for task in cell["tasks"]:
        if task["kind"] == "categorical":
            labels[task["name"]] = torch.randint(0, task["units"], (count,), generator=generator)
        else:
            # OpenMoji's tags are about 4% positive.
            labels[task["name"]] = (torch.rand(count, task["units"], generator=generator) < 0.05).float()
    return images, labels


def augment(pixels, padding, flip, generator):
    """uint8 [N, C, S, S] -> float in [0, 1], each image shifted by up to `padding` pixels (edges repeated) and maybe flipped."""
    images = pixels.float().div_(255)
    if padding == 0 and not flip:
        return images
    n, _, size, _ = images.shape
    base = torch.arange(size)
    rows = (base[None, :] + torch.randint(-padding, padding + 1, (n, 1), generator=generator)).clamp_(0, size - 1)
    cols = (base[None, :] + torch.randint(-padding, padding + 1, (n, 1), generator=generator)).clamp_(0, size - 1)
    if flip:
        flipped = torch.rand(n, generator=generator) < 0.5
        cols = torch.where(flipped[:, None], cols.flip(1), cols)
    picked = images[torch.arange(n)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return picked.permute(0, 3, 1, 2).contiguous()


def batches_per_epoch(samples, batch):
    full, rest = divmod(samples, batch)
    return full + (1 if rest > 1 or full == 0 else 0)


def learning_rate(train, epoch, step, steps):
    if train["schedule"] == "constant":
        return train["learningRate"]
    if train["schedule"] == "step":
        return train["learningRate"] * train["stepGamma"] ** (epoch // max(1, train["stepEvery"]))
    progress = (epoch * steps + step) / max(1, train["epochs"] * steps)
    return train["learningRate"] * 0.5 * (1 + math.cos(math.pi * progress))


def task_losses(logits, labels, tasks):
    total = 0
    for output, task in zip(logits, tasks):
        target = labels[task["name"]]
        if task["kind"] == "categorical":
            total = total + F.cross_entropy(output, target)
        else:
            total = total + F.binary_cross_entropy_with_logits(output, target)
    return total


def evaluate(net, split, tasks, batch):
    """Mean primary score over tasks: accuracy, or label accuracy at sigmoid > 0.5."""
    images, labels = split
    net.eval()
    outputs = [[] for _ in tasks]
    with torch.no_grad():
        for start in range(0, images.shape[0], batch):
            for i, output in enumerate(net(images[start : start + batch].float().div_(255))):
                outputs[i].append(output)
    scores = []
    for task, parts in zip(tasks, outputs):
        logits = torch.cat(parts)
        target = labels[task["name"]]
        if task["kind"] == "categorical":
            scores.append((logits.argmax(1) == target).float().mean().item())
        else:
            scores.append(((logits > 0).float() == target).float().mean().item())
    return sum(scores) / len(scores)


def train_network(cell, tasks, data, seed):
    """One network of the cell: every epoch trained and validated, the best weights tested. Returns its timings."""
    train = cell["train"]
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = CellNetwork(CONVNET_WIDTHS[cell["backbone"]], cell["channels"], tasks)
    kernels = [p for name, p in net.named_parameters() if name.endswith("weight") and p.dim() > 1]
    others = [p for name, p in net.named_parameters() if not (name.endswith("weight") and p.dim() > 1)]
    if train["optimizer"] == "adam":
        optimizer = torch.optim.Adam(
            [{"params": kernels, "weight_decay": train["weightDecay"]}, {"params": others, "weight_decay": 0}],
            lr=train["learningRate"],
            betas=(0.9, 0.999),
            eps=1e-8,
        )
    else:
        optimizer = torch.optim.SGD(
            [{"params": kernels, "weight_decay": train["weightDecay"]}, {"params": others, "weight_decay": 0}],
            lr=train["learningRate"],
            momentum=train["momentum"],
        )
    train_images, train_labels = data["train"]
    samples = train_images.shape[0]
    batch = min(train["batchSize"], samples)
    steps = batches_per_epoch(samples, batch)
    eval_batch = max(64, train["batchSize"])
    best_score, best_weights = -math.inf, None
    step_seconds, epoch_seconds = 0.0, []
    for epoch in range(train["epochs"]):
        epoch_start = time.perf_counter()
        order = torch.randperm(samples, generator=generator)
        net.train()
        for step in range(steps):
            step_start = time.perf_counter()
            index = order[step * batch : (step + 1) * batch]
            images = augment(train_images[index], train["cropPadding"], train["flip"], generator)
            labels = {name: values[index] for name, values in train_labels.items()}
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(train, epoch, step, steps)
            optimizer.zero_grad(set_to_none=True)
            loss = task_losses(net(images), labels, tasks)
            loss.backward()
            optimizer.step()
            if not math.isfinite(loss.item()):
                fail(f"non-finite loss at epoch {epoch + 1}, step {step + 1}")
            step_seconds += time.perf_counter() - step_start
        score = evaluate(net, data["val"], tasks, eval_batch)
        if score > best_score:
            best_score = score
            best_weights = {k: v.detach().clone() for k, v in net.state_dict().items()}
        epoch_seconds.append(time.perf_counter() - epoch_start)
    test_start = time.perf_counter()
    net.load_state_dict(best_weights)
    evaluate(net, data["test"], tasks, eval_batch)
    test_seconds = time.perf_counter() - test_start
    images_per_epoch = min(samples, steps * batch)
    return {
        "train_seconds": sum(epoch_seconds) + test_seconds,
        "step_seconds": step_seconds,
        "images": images_per_epoch * train["epochs"],
        "epoch_seconds": epoch_seconds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file", nargs="?", default=STUDY, help="benchmark YAML file (default: the package's benchmarks/openmoji.yaml, whose full regime the quick study lacks)")
    parser.add_argument("--regime", default="full")
    parser.add_argument("--setting", default="mtl", choices=["mtl", "stl"])
    parser.add_argument("--seed", type=positive_int, default=1)
    parser.add_argument("--epochs", type=positive_int, default=None, help="instead of the benchmark's, as mtl-bench run --epochs")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch.set_num_threads (default: PyTorch's choice)")
    args = parser.parse_args()

    cell = resolve_cell(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_at_start = [round(v, 2) for v in os.getloadavg()]
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(args.seed)
    data = {split: random_split(cell["splits"][split], cell, generator) for split in ("train", "val", "test")}
    units = [cell["tasks"]] if args.setting == "mtl" else [[task] for task in cell["tasks"]]
    networks = []
    for unit in units:
        unit_data = {
            split: (images, {t["name"]: labels[t["name"]] for t in unit}) for split, (images, labels) in data.items()
        }
        networks.append(train_network(cell, unit, unit_data, args.seed))
    wall = time.perf_counter() - started
    step_seconds = sum(n["step_seconds"] for n in networks)
    images = sum(n["images"] for n in networks)
    record = {
        "reference": "pytorch cell",
        "benchmark": cell["benchmark"],
        "cell": cell["cell"],
        "backbone": cell["backbone"],
        "input_size": cell["size"],
        "channels": cell["channels"],
        "heads": {t["name"]: t["units"] for t in cell["tasks"]},
        "images": cell["splits"],
        "data": "random images and labels of the dataset's split sizes, image size and task widths (timing only)",
        "batch": cell["train"]["batchSize"],
        "epochs": cell["train"]["epochs"],
        "backend": f"pytorch {torch.__version__} cpu",
        "threads": torch.get_num_threads(),
        # The cell from its data in memory to its test pass: the network(s) built, trained, validated, tested.
        "wallSeconds": round(wall, 2),
        # mtl-bench's trainSeconds: every epoch (its steps and its validation pass) plus the test pass.
        "trainSeconds": round(sum(n["train_seconds"] for n in networks), 2),
        "stepSeconds": round(step_seconds, 2),
        "train_images_per_s": round(images / step_seconds, 1),
        "epoch_seconds": [round(s, 2) for n in networks for s in n["epoch_seconds"]],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": {"cores": os.cpu_count(), "cpuModel": cpu_model(), "loadAverageAtStart": load_at_start, "python": platform.python_version()},
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
