"""How the default `digitocr train` configuration was chosen: a small sweep scored on the VALIDATION split only.

Each candidate trains on 55,000 images with three seeds; the table shows validation accuracy (mean, min) and
training seconds. The default is the cheapest candidate whose mean validation accuracy matches the best ones
within noise. The test set is never looked at here.

    .venv/bin/python benchmarks/default_sweep.py
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import statistics

import torch

from digitocr.config import ModelConfig, TrainConfig
from digitocr.data import load_mnist
from digitocr.machine import cpu_name
from digitocr.models import build_model
from digitocr.training import fit

CANDIDATES = {
    "256, 4 ep, batch 256, lr 0.2 (default)": TrainConfig(),
    "256, 3 ep, batch 256, lr 0.2": TrainConfig(epochs=3),
    "512, 3 ep, batch 512, lr 0.4": TrainConfig(model=ModelConfig(hidden=(512,)), epochs=3, batch_size=512, lr=0.4),
    "1024, 3 ep, batch 512, lr 0.4": TrainConfig(model=ModelConfig(hidden=(1024,)), epochs=3, batch_size=512, lr=0.4),
    "256-256, 4 ep, batch 256, lr 0.2": TrainConfig(model=ModelConfig(hidden=(256, 256))),
    "128, 5 ep, batch 128, lr 0.1": TrainConfig(model=ModelConfig(hidden=(128,)), epochs=5, batch_size=128, lr=0.1),
    "256, 4 ep, AdamW lr 3e-3": TrainConfig(optimizer="adamw", lr=3e-3, weight_decay=0.01),
}


def main() -> None:
    splits = {seed: load_mnist(seed=seed, log=lambda message: None) for seed in range(3)}
    print(f"# Default sweep, validation split only, {datetime.date.today()}, {cpu_name()} {os.cpu_count()} CPU cores\n")
    print("| candidate | val accuracy mean | val min | train seconds mean |")
    print("| --- | --- | --- | --- |")
    for name, config in CANDIDATES.items():
        accuracies, seconds = [], []
        for seed, data in splits.items():
            run = dataclasses.replace(config, seed=seed)
            torch.manual_seed(seed)
            model = build_model(run.model)
            history = fit(model, data, run)
            best = history.epochs[history.best_epoch - 1]
            accuracies.append(best.val_accuracy)
            seconds.append(sum(stats.seconds for stats in history.epochs))
        print(
            f"| {name} | {statistics.mean(accuracies):.2%} | {min(accuracies):.2%} | {statistics.mean(seconds):.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
