"""How long `digitocr tune` with no flags can take here: epoch costs of the MLP search space, measured in one run.

Times one training epoch of the default `digitocr train` model (the reference) and of the corners of the MLP search
space, prints each as seconds and as a ratio to the reference, then bounds the default search:
timeout + one last trial of the slowest kind + the final retrain of the slowest kind on all 60,000 images.

    python benchmarks/tune_budget.py            # full epochs (55,000 images)
    python benchmarks/tune_budget.py --images 10000 --threads 2
"""

from __future__ import annotations

import argparse
import datetime

import torch

from digitocr.config import ModelConfig, TrainConfig, TuneConfig
from digitocr.data import MNISTData, Split, load_mnist
from digitocr.machine import cpu_name
from digitocr.pipeline import train

CASES = {  # name -> (hidden, batch size): the reference, then the search space's cheapest, middle and dearest
    "default train (256, bs 256)": ((256,), 256),
    "smallest (128, bs 512)": ((128,), 512),
    "middle (512x2, bs 128)": ((512, 512), 128),
    "largest (1024x3, bs 128)": ((1024, 1024, 1024), 128),
}


def epoch_seconds(data: MNISTData, hidden: tuple[int, ...], batch_size: int) -> float:
    """Seconds of the training loop of one epoch (the validation split here is tiny, so it adds nothing)."""
    config = TrainConfig(model=ModelConfig(hidden=hidden), batch_size=batch_size, epochs=1, device="cpu")
    result = train(config, out=None, data=data, evaluate_test=False, log=lambda message: None)
    return result.history.epochs[0].seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=55000, help="training images per timed epoch")
    parser.add_argument("--repeats", type=int, default=3, help="timings per case; the fastest counts")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    full = load_mnist(log=lambda message: None)
    data = MNISTData(
        train=Split(full.train.images[: args.images], full.train.labels[: args.images]),
        val=Split(full.val.images[:100], full.val.labels[:100]),
        test=full.test,
        sha256=full.sha256,
    )
    scale = 55000 / min(args.images, len(full.train))  # per full epoch of the tuning split
    print(
        f"{datetime.date.today()} {cpu_name()}, "
        f"{torch.get_num_threads()} torch threads, timed on {min(args.images, len(full.train))} images"
    )
    epoch_seconds(data, *CASES["smallest (128, bs 512)"])  # warm-up: first-call costs of the CPU kernels
    # The fastest of a few repeats: on a shared machine the slow ones measure the neighbours, not the model.
    seconds = {
        name: min(epoch_seconds(data, *case) for _ in range(args.repeats)) * scale for name, case in CASES.items()
    }
    reference = seconds["default train (256, bs 256)"]
    for name, value in seconds.items():
        print(f"{name:30s} {value:7.1f} s/epoch  {value / reference:5.1f}x default")
    tune = TuneConfig()
    slowest_trial = seconds["largest (1024x3, bs 128)"] * tune.max_epochs
    bound = tune.timeout + slowest_trial + slowest_trial * 60000 / 55000
    print(f"defaults: {tune.trials} trials x {tune.max_epochs} epochs, timeout {tune.timeout:g} s")
    print(
        f"slowest trial {slowest_trial / 60:.1f} min; upper bound of `digitocr tune` {bound / 60:.1f} min "
        f"(timeout + a last slowest trial + the final retrain of the slowest config)"
    )
    print(
        f"all {tune.trials} trials at the middle size, none pruned: "
        f"{tune.trials * tune.max_epochs * seconds['middle (512x2, bs 128)'] / 60:.1f} min"
    )


if __name__ == "__main__":
    main()
