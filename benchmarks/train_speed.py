"""How fast `digitocr train` is, measured in one run: against the torch import floor, the machine's matmul rate
and the course notebook's approach.

(a) the floor: a fresh `python -c "import torch"`, which no torch program can go under; and the whole
    `digitocr train` process with defaults (MNIST present), import to saved model; interleaved, median of 3 each.
    Target: the whole process ≤ 2.5 × the floor at ≥ 98 % test accuracy.
(b) per epoch, the arithmetic the default MLP does (derived from its layer sizes) over the epoch's seconds, against
    this machine's torch.matmul rate on a large square product in the precision training used (fp32, or bf16 where
    `--precision auto` picks it: CPUs with AVX512-BF16 / AMX).
(c) the replica of the course notebook (benchmarks/replica.py): time to first reach 97 % and 98 % test accuracy.
Prints Markdown tables for the README.

    .venv/bin/python benchmarks/train_speed.py [--runs 3] [--replica-epochs 12] [--no-replica]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from replica import train_replica

from digitocr.config import TrainConfig
from digitocr.data import ensure_mnist
from digitocr.devices import resolve_device
from digitocr.machine import cpu_name
from digitocr.models import build_model
from digitocr.training import uses_bf16

TARGET_RATIO = 2.5  # whole process / torch import floor
TARGET_ACCURACY = 0.98


def wall_seconds(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, result.stdout


def time_torch_import() -> float:
    return wall_seconds([sys.executable, "-c", "import torch"])[0]


def time_digitocr_train(seed: int, data_root: Path) -> tuple[float, dict]:
    """Wall seconds of a fresh `digitocr train` process and its --json summary."""
    with tempfile.TemporaryDirectory() as folder:
        seconds, stdout = wall_seconds(
            [
                sys.executable,
                "-m",
                "digitocr",
                "train",
                "--quiet",
                "--json",
                "--seed",
                str(seed),
                "--data-dir",
                str(data_root),
                "--out",
                str(Path(folder) / "model.pth"),
            ]
        )
    return seconds, json.loads(stdout.strip().splitlines()[-1])


def epoch_flops(config: TrainConfig) -> tuple[float, float]:
    """(FLOPs an epoch of training + validation does, the common 3 × forward estimate over all training images).

    Per image, a linear layer of in x out weights costs 2·in·out forward (multiply and add), 2·in·out for its
    weight gradient and 2·in·out for its input gradient, except the first layer: its input is the images, which
    need no gradient, and autograd skips it. Biases, activations and the loss are left out (< 1 %).
    """
    model = build_model(config.model)
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    if not linears or any(isinstance(module, nn.Conv2d) for module in model.modules()):
        raise SystemExit("the FLOP count is written for the MLP (the default model)")
    forward = sum(2 * layer.in_features * layer.out_features for layer in linears)
    backward = sum(
        (1 if index == 0 else 2) * 2 * layer.in_features * layer.out_features for index, layer in enumerate(linears)
    )
    train_images = 60_000 - config.data.val_size
    images_seen = train_images // config.batch_size * config.batch_size  # the last incomplete batch is dropped
    return images_seen * (forward + backward) + config.data.val_size * forward, 3 * forward * train_images


def matmul_rate(dtype: torch.dtype, size: int = 2048, seconds: float = 1.0) -> float:
    """FLOP/s of size x size torch.matmul in ``dtype`` over about ``seconds`` (after one warm-up product)."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    torch.matmul(a, b)
    products, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        torch.matmul(a, b)
        products += 1
    return products * 2 * size**3 / (time.perf_counter() - started)


def first_epoch_reaching(results, target):
    for epoch, (seconds, accuracy) in enumerate(results, 1):
        if accuracy >= target:
            return epoch, seconds
    return None, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="processes of each kind; run i trains with seed i")
    parser.add_argument("--replica-epochs", type=int, default=12, help="stop the replica after this many epochs")
    parser.add_argument("--no-replica", action="store_true", help="skip (c), the slow part")
    args = parser.parse_args()
    data_root = ensure_mnist(log=lambda message: None)
    config = TrainConfig()
    device = resolve_device(config.device)
    bf16 = uses_bf16(config.precision, device)
    load_before = os.getloadavg()[0]

    # Interleaved, so a burst of load on this shared machine hits both kinds alike.
    floor, ours = [], []
    for seed in range(args.runs):
        floor.append(time_torch_import())
        ours.append(time_digitocr_train(seed, data_root))
    floor_seconds = statistics.median(floor)
    our_seconds = statistics.median(seconds for seconds, _ in ours)
    accuracies = [summary["test_accuracy"] for _, summary in ours]
    loop_runs = [summary["train_seconds"] for _, summary in ours]
    loop_seconds = statistics.median(loop_runs)

    print(
        f"# Training speed, {datetime.date.today()}, {cpu_name()} ({platform.machine()}, {os.cpu_count()} "
        f"cores, torch {torch.__version__}, {torch.get_num_threads()} threads), device {device.type}, "
        f"precision {'bf16' if bf16 else 'fp32'} (--precision {config.precision}); load average "
        f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after the timed runs\n"
    )
    print(f"| what | seconds (median of {args.runs}) | runs |")
    print("| --- | --- | --- |")
    print(f'| `python -c "import torch"` (the floor) | {floor_seconds:.2f} | {", ".join(f"{s:.2f}" for s in floor)} |')
    print(
        f"| `digitocr train` defaults, whole process | {our_seconds:.2f} | {', '.join(f'{s:.2f}' for s, _ in ours)} |"
    )
    print(
        f"| of which the training loop (validation included) | {loop_seconds:.2f} | "
        f"{', '.join(f'{s:.2f}' for s in loop_runs)} |"
    )
    ratio = our_seconds / floor_seconds
    met = ratio <= TARGET_RATIO and min(accuracies) >= TARGET_ACCURACY
    print(
        f"\nwhole process / torch import floor = {ratio:.2f} (target ≤ {TARGET_RATIO}) at test accuracy "
        f"{min(accuracies):.2%} to {max(accuracies):.2%} (seeds 0-{args.runs - 1}; "
        f"target ≥ {TARGET_ACCURACY:.0%}): {'met' if met else 'NOT met'}"
    )

    done, estimate = epoch_flops(config)
    peak = {"fp32": matmul_rate(torch.float32)}
    if bf16:
        peak["bf16"] = matmul_rate(torch.bfloat16)
    path = "bf16" if bf16 else "fp32"
    print(
        "\nmatmul rate, 2048 x 2048 torch.matmul for ~1 s: "
        + ", ".join(f"{name} {rate / 1e9:.0f} GFLOP/s" for name, rate in peak.items())
        + f"; training took the {path} path"
    )
    print(
        f"arithmetic per epoch: {done / 1e9:.1f} GFLOP ({config.batch_size}-image batches of "
        f"{60_000 - config.data.val_size:,} images forward + backward, {config.data.val_size:,} validation "
        f"forward; the 3 × forward estimate would say {estimate / 1e9:.1f})\n"
    )
    print(f"| epoch | seconds (median of {args.runs}) | GFLOP/s | share of the {path} matmul rate |")
    print("| --- | --- | --- | --- |")
    for epoch, runs in enumerate(zip(*[summary["history"] for _, summary in ours]), 1):
        seconds = statistics.median(stats["seconds"] for stats in runs)
        rate = done / seconds
        print(f"| {epoch} | {seconds:.2f} | {rate / 1e9:.1f} | {rate / peak[path]:.0%} |")

    if args.no_replica:
        return

    def report(epoch, seconds, accuracy):
        print(f"replica epoch {epoch}: {seconds:.1f} s, test accuracy {accuracy:.2%}", file=sys.stderr)
        return accuracy >= TARGET_ACCURACY

    replica = train_replica(str(data_root), args.replica_epochs, on_epoch=report)
    epoch97, seconds97 = first_epoch_reaching(replica, 0.97)
    epoch98, seconds98 = first_epoch_reaching(replica, 0.98)
    fmt = lambda epoch, seconds: f"{seconds:.1f} s (epoch {epoch})" if epoch else f"not within {len(replica)} epochs"  # noqa: E731
    print("\n| run | test accuracy | time to 97 % | time to 98 % |")
    print("| --- | --- | --- | --- |")
    print(
        f"| course notebook replica (DataLoader, batch 64, 784-128-64-10, Adam) | "
        f"{replica[-1][1]:.2%} after {len(replica)} epochs | {fmt(epoch97, seconds97)} | {fmt(epoch98, seconds98)} |"
    )
    print(
        f"| `digitocr train` defaults, whole process (import → saved model) | {min(accuracies):.2%} (min of "
        f"{args.runs} seeds) | ≤ {our_seconds:.1f} s | {our_seconds:.1f} s |"
    )
    if seconds97:
        print(
            f"\ndigitocr's whole process to ≥ 98 % / the replica's time to 97 % = {our_seconds / seconds97:.3f}; "
            f"{seconds97 / our_seconds:.1f}× faster"
        )


if __name__ == "__main__":
    main()
