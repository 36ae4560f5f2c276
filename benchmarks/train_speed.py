"""How fast `digitocr train` gets to 98 % against the course notebook's approach, measured in one run.

(a) the replica (benchmarks/replica.py): time to first reach 97 % and 98 % test accuracy;
(b) the whole `digitocr train` process with defaults, import to saved model, in a fresh subprocess, per seed.
Prints a Markdown table and the ratio (b) / (a)'s time to 97 %.

    .venv/bin/python benchmarks/train_speed.py [--seeds 3] [--replica-epochs 12] [--quick]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from replica import train_replica  # noqa: E402

from digitocr.data import ensure_mnist  # noqa: E402


def time_digitocr_train(seed: int, data_root: Path) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "digitocr", "train", "--quiet", "--json", "--seed", str(seed),
             "--data-dir", str(data_root), "--out", str(Path(folder) / "model.pth")],
            capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - started
    return seconds, json.loads(result.stdout.strip().splitlines()[-1])


IMPORTS = ("import time; start = time.perf_counter(); import torch; torch_done = time.perf_counter(); "
           "import torchvision.datasets; print(torch_done - start, time.perf_counter() - torch_done)")


def import_floor(repeats: int = 3) -> tuple[float, float]:
    """Median seconds a fresh interpreter spends importing torch, then torchvision.datasets (which loading MNIST
    through torchvision requires): the part of the whole process no training speed-up can touch."""
    runs = [tuple(map(float, subprocess.run([sys.executable, "-c", IMPORTS], capture_output=True, text=True,
                                            check=True).stdout.split())) for _ in range(repeats)]
    return statistics.median(run[0] for run in runs), statistics.median(run[1] for run in runs)


def first_epoch_reaching(results, target):
    for epoch, (seconds, accuracy) in enumerate(results, 1):
        if accuracy >= target:
            return epoch, seconds
    return None, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--replica-epochs", type=int, default=12, help="stop the replica after this many epochs")
    parser.add_argument("--quick", action="store_true", help="1 seed, replica stops at 97 %%")
    args = parser.parse_args()
    seeds = 1 if args.quick else args.seeds
    data_root = ensure_mnist(log=lambda message: None)

    ours = [time_digitocr_train(seed, data_root) for seed in range(seeds)]
    our_seconds = [seconds for seconds, _ in ours]
    our_accuracy = [summary["test_accuracy"] for _, summary in ours]

    def report(epoch, seconds, accuracy):
        print(f"replica epoch {epoch}: {seconds:.1f} s, test accuracy {accuracy:.2%}", file=sys.stderr)
        return accuracy >= (0.97 if args.quick else 0.98)

    replica = train_replica(str(data_root), args.replica_epochs, on_epoch=report)
    epoch97, seconds97 = first_epoch_reaching(replica, 0.97)
    epoch98, seconds98 = first_epoch_reaching(replica, 0.98)

    mean = statistics.mean(our_seconds)
    spread = statistics.stdev(our_seconds) if len(our_seconds) > 1 else 0.0
    fmt = lambda epoch, seconds: f"{seconds:.1f} s (epoch {epoch})" if epoch else f"not within {len(replica)} epochs"  # noqa: E731
    print(f"# Training speed, {datetime.date.today()}, {platform.machine()} {os.cpu_count()} CPU cores, "
          f"torch threads {__import__('torch').get_num_threads()}\n")
    print("| run | test accuracy | time to 97 % | time to 98 % |")
    print("| --- | --- | --- | --- |")
    print(f"| course notebook replica (DataLoader, batch 64, 784-128-64-10, Adam) | "
          f"{replica[-1][1]:.2%} after {len(replica)} epochs | {fmt(epoch97, seconds97)} | {fmt(epoch98, seconds98)} |")
    accuracy_text = f"{statistics.mean(our_accuracy):.2%} (min {min(our_accuracy):.2%}, {seeds} seeds)"
    print(f"| `digitocr train` defaults, whole process (import → saved model) | {accuracy_text} | "
          f"≤ {mean:.1f} ± {spread:.1f} s | {mean:.1f} ± {spread:.1f} s |")
    if seconds97:
        print(f"\nratio: digitocr's whole process to ≥ 98 % / replica's time to 97 % = {mean / seconds97:.3f} "
              f"(target ≤ 0.100); {seconds97 / mean:.1f}× faster")
    torch_seconds, torchvision_seconds = import_floor()
    print(f"import floor (fresh interpreter, median of 3): torch {torch_seconds:.2f} s, then torchvision.datasets "
          f"{torchvision_seconds:.2f} s")


if __name__ == "__main__":
    main()
