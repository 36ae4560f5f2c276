"""The benchmark table: anchors and every digitocr preset, measured in one run on one machine.

    python benchmarks/compare.py            # full budget (tens of minutes on 2 CPU cores)
    python benchmarks/compare.py --quick    # everything on a tiny budget (CI: checks the table is produced)

Rows: the course-notebook replica, PyTorch's examples/mnist CNN recipe, scikit-learn's MLPClassifier and each
digitocr preset. Columns: test accuracy (mean ± std over seeds), training seconds, time to 98 % / 99 %,
inference images/s at batch 1,000. Writes Markdown (and the raw numbers as JSON) to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pytorch_example import PyTorchExampleNet, train_pytorch_example
from replica import replica_model, train_replica

from digitocr.config import LINE_MODELS
from digitocr.data import Split, ensure_mnist, load_mnist
from digitocr.machine import cpu_name
from digitocr.pipeline import train
from digitocr.presets import PRESETS, preset_config
from digitocr.training import TrainCallbacks

RESULTS = Path(__file__).parent / "results"
QUICK_IMAGES = 3000  # training images per recipe in --quick mode


@dataclass
class Row:
    name: str
    budget: str  # epochs or iterations, in words
    accuracies: list[float] = field(default_factory=list)  # test accuracy per seed
    seconds: list[float] = field(default_factory=list)  # training seconds per seed
    curves: list[list[tuple[float, float]]] = field(default_factory=list)  # per seed: (cumulative s, accuracy)
    curve_split: str = "test"  # which split the time-to-X curve is measured on
    images_per_second: float = float("nan")  # inference, batch 1,000
    config: dict | None = None

    def time_to(self, target: float) -> str:
        """Mean seconds until the curve first reaches ``target`` (over the seeds that reach it)."""
        times = [next((s for s, acc in curve if acc >= target), None) for curve in self.curves]
        reached = [t for t in times if t is not None]
        if not reached:
            return "—"
        text = f"{statistics.mean(reached):.1f}"
        return text if len(reached) == len(times) else f"{text} ({len(reached)}/{len(times)} seeds)"

    def markdown(self) -> str:
        mean = statistics.mean(self.accuracies)
        spread = f" ± {statistics.stdev(self.accuracies):.2%}" if len(self.accuracies) > 1 else ""
        split = "" if self.curve_split == "test" else " ¹"
        return (
            f"| {self.name} | {self.budget} | {mean:.2%}{spread} (n={len(self.accuracies)}) | "
            f"{statistics.mean(self.seconds):.1f} | {self.time_to(0.98)}{split} | {self.time_to(0.99)}{split} | "
            f"{self.images_per_second:,.0f} |"
        )


@torch.no_grad()
def images_per_second(predict, images: torch.Tensor, batch: int = 1000, repeats: int = 3) -> float:
    """Best of ``repeats`` passes over ``images`` in batches of ``batch``."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for start in range(0, len(images), batch):
            predict(images[start : start + batch])
        best = min(best, time.perf_counter() - started)
    return len(images) / best


def torch_speed(model: torch.nn.Module, images: torch.Tensor) -> float:
    model.eval()
    return images_per_second(model, images)


def anchor_row(name, budget, train_curve, test_images, model_for_speed, normalise) -> Row:
    """``train_curve()`` trains the anchor and returns per epoch (seconds so far, test accuracy)."""
    row = Row(name, budget)
    curve = train_curve()
    row.accuracies.append(curve[-1][1])
    row.seconds.append(curve[-1][0])
    row.curves.append(curve)
    # Inference speed of the architecture on the same inputs the recipe feeds it (weights do not change speed).
    row.images_per_second = torch_speed(model_for_speed, normalise(test_images))
    return row


def sklearn_row(data, epochs: int, limit: int | None, seed: int) -> Row:
    """scikit-learn's MLPClassifier with its defaults (one hidden layer of 100, Adam), one partial_fit per epoch."""
    import numpy as np
    from sklearn.neural_network import MLPClassifier

    train_x = data.train.images.flatten(1).numpy()[:limit]
    train_y = data.train.labels.numpy()[:limit]
    test_x, test_y = data.test.images.flatten(1).numpy(), data.test.labels.numpy()
    classifier = MLPClassifier(random_state=seed)
    row = Row("scikit-learn MLPClassifier (100 hidden, Adam, defaults)", f"{epochs} epochs")
    curve, trained = [], 0.0
    for _ in range(epochs):
        started = time.perf_counter()
        classifier.partial_fit(train_x, train_y, classes=np.arange(10))
        trained += time.perf_counter() - started
        curve.append((trained, float((classifier.predict(test_x) == test_y).mean())))
    row.accuracies.append(curve[-1][1])
    row.seconds.append(trained)
    row.curves.append(curve)
    row.images_per_second = images_per_second(classifier.predict, test_x)
    return row


class _Curve(TrainCallbacks):
    """Cumulative training seconds and validation accuracy after each epoch."""

    def __init__(self):
        self.points: list[tuple[float, float]] = []

    def on_epoch_end(self, stats) -> None:
        previous = self.points[-1][0] if self.points else 0.0
        self.points.append((previous + stats.seconds, stats.val_accuracy))


def preset_row(model: str, preset: str, seeds: list[int], quick: bool, data_dir) -> Row:
    config = preset_config(model, preset)
    if quick:
        config = replace(config, epochs=1)
    row = Row(
        f"digitocr {model} {preset}", f"{config.epochs} epochs", curve_split="validation", config=config.to_dict()
    )
    for seed in seeds:
        seeded = replace(config, seed=seed)
        data = load_mnist(data_dir, val_size=seeded.data.val_size, seed=seed, log=lambda message: None)
        if quick:  # a small training set and validation split; the test set stays whole
            data = replace(
                data,
                train=Split(data.train.images[:QUICK_IMAGES], data.train.labels[:QUICK_IMAGES]),
                val=Split(data.val.images[:1000], data.val.labels[:1000]),
            )
        curve = _Curve()
        result = train(seeded, out=None, callbacks=curve, data=data)
        row.accuracies.append(result.test_accuracy)
        row.seconds.append(result.train_seconds)
        row.curves.append(curve.points)
        model_speed = torch_speed(result.model, data.test.images[:1000] if quick else data.test.images)
    row.images_per_second = model_speed
    return row


def machine() -> str:
    cpu = cpu_name()
    import os

    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"Python {platform.python_version()}"
    )


def run(
    quick: bool,
    seeds: int,
    accurate_seeds: int,
    anchor_epochs: dict[str, int],
    data_dir=None,
    only: set[str] | None = None,
    log=print,
) -> tuple[list[Row], str]:
    root = ensure_mnist(data_dir, log=lambda message: None)
    data = load_mnist(data_dir, val_size=0, seed=0, log=lambda message: None)  # anchors train on all 60,000
    limit = QUICK_IMAGES if quick else None
    # Inference speed is measured on the test images (1,000 of them in quick mode).
    test_images = data.test.images[:1000] if quick else data.test.images
    from digitocr.config import MNIST_MEAN, MNIST_STD

    standardise = lambda images: (images - MNIST_MEAN) / MNIST_STD  # noqa: E731 - as the anchors' Normalize
    jobs = {
        # The replica is shared with benchmarks/train_speed.py and always trains on all 60,000 images.
        "replica": lambda: anchor_row(
            "course-notebook replica (MLP 784-128-64-10, Adam, DataLoader 64)",
            f"{anchor_epochs['replica']} epochs",
            lambda: train_replica(str(root), anchor_epochs["replica"]),
            test_images,
            replica_model(),
            lambda images: standardise(images).flatten(1),
        ),
        "example": lambda: anchor_row(
            "PyTorch examples/mnist CNN (Adadelta, StepLR, batch 64)",
            f"{anchor_epochs['example']} epochs",
            lambda: train_pytorch_example(
                root, anchor_epochs["example"], limit=limit, test_limit=limit and len(test_images)
            ),
            test_images,
            PyTorchExampleNet(),
            standardise,
        ),
        "sklearn": lambda: sklearn_row(data, anchor_epochs["sklearn"], limit, seed=0),
    }
    for model, presets in PRESETS.items():
        if model in LINE_MODELS:
            continue  # it reads lines, not single digits: evaluate_lines and reading_accuracy.py measure it
        for preset in presets:
            count = 1 if quick else (accurate_seeds if preset == "accurate" else seeds)
            jobs[f"{model}-{preset}"] = lambda m=model, p=preset, n=count: preset_row(
                m, p, list(range(n)), quick, data_dir
            )
    rows = []
    for name, job in jobs.items():
        if only and name not in only:
            continue
        log(f"benchmark: {name} ...")
        rows.append(job())
        log(f"  {rows[-1].markdown()}")
    return rows, machine()


def markdown(rows: list[Row], machine_text: str, quick: bool) -> str:
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Measured {date} on {machine_text}{' — QUICK MODE (tiny budget, not representative)' if quick else ''}.",
        "",
        "| recipe | budget | test accuracy | training s | s to 98 % | s to 99 % | inference img/s (batch 1,000) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *(row.markdown() for row in rows),
        "",
        *ratios(rows),
        "¹ digitocr rows: first epoch whose *validation* accuracy reaches the mark (digitocr never looks at the test "
        "set while training); anchor rows: test accuracy after each epoch. The PyTorch anchors' seconds include "
        "building their datasets but not their per-epoch test pass; scikit-learn's and digitocr's exclude loading "
        "the data, and digitocr's include its per-epoch validation.",
    ]
    return "\n".join(lines) + "\n"


def ratios(rows: list[Row]) -> list[str]:
    """How many times faster than the course-notebook replica each recipe reaches 98 % (same run, same machine)."""

    def seconds_to_98(row: Row) -> float | None:
        times = [next((s for s, acc in curve if acc >= 0.98), None) for curve in row.curves]
        return statistics.mean(times) if times and None not in times else None

    baseline = next((row for row in rows if row.name.startswith("course-notebook")), None)
    base = seconds_to_98(baseline) if baseline else None
    if base is None:
        return []
    lines = [f"Time to 98 % relative to the course-notebook replica ({base:.1f} s):", ""]
    for row in rows:
        if row is not baseline and (ours := seconds_to_98(row)) is not None:
            lines.append(
                f"- {row.name}: {base / ours:.1f}x faster"
                if ours < base
                else f"- {row.name}: {ours / base:.1f}x slower"
            )
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"1 epoch, 1 seed, {QUICK_IMAGES} training images per recipe (the course replica: all)",
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds per fast preset (default 3)")
    parser.add_argument("--accurate-seeds", type=int, default=1, help="seeds per accurate preset (default 1)")
    parser.add_argument("--replica-epochs", type=int, default=5)
    parser.add_argument("--example-epochs", type=int, default=14, help="PyTorch's example default: 14")
    parser.add_argument("--sklearn-epochs", type=int, default=20)
    parser.add_argument(
        "--only", nargs="*", help="rows to run: replica example sklearn mlp-fast mlp-accurate cnn-fast cnn-accurate"
    )
    parser.add_argument("--out", default=str(RESULTS / "compare.md"), help="Markdown file to write")
    parser.add_argument("--data-dir")
    args = parser.parse_args(argv)
    epochs = {"replica": args.replica_epochs, "example": args.example_epochs, "sklearn": args.sklearn_epochs}
    if args.quick:
        epochs = dict.fromkeys(epochs, 1)
    rows, machine_text = run(
        args.quick,
        args.seeds,
        args.accurate_seeds,
        epochs,
        args.data_dir,
        set(args.only) if args.only else None,
        log=lambda text: print(text, file=sys.stderr),
    )
    text = markdown(rows, machine_text, args.quick)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    out.with_suffix(".json").write_text(
        json.dumps(
            [
                {
                    "name": row.name,
                    "budget": row.budget,
                    "accuracies": row.accuracies,
                    "seconds": row.seconds,
                    "curves": row.curves,
                    "curve_split": row.curve_split,
                    "images_per_second": row.images_per_second,
                    "config": row.config,
                }
                for row in rows
            ],
            indent=1,
        )
    )
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
