"""Named training configurations per model, in one place: ``fast`` (each model's default) and ``accurate``.

A preset is a set of overrides of ``TrainConfig``'s defaults by flat setting name (``TrainConfig.with_settings``,
the names of `digitocr train`'s flags), so ``TrainConfig()`` itself is the MLP's fast preset. Hyperparameters
were chosen on the validation split only; the README's table gives measured results.
"""

from __future__ import annotations

from typing import Any

from digitocr.config import TrainConfig
from digitocr.errors import ConfigError

DEFAULT_PRESET = "fast"

# model -> preset name -> settings by flat name; the model's own name is set by preset_config.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "mlp": {
        "fast": {},  # the defaults: a 784-256-10 MLP, 4 epochs of one-cycle SGD, about 98 % in seconds
        # The known recipe for fully connected nets past 99 %: wide layers, affine + elastic distortion, a long
        # schedule, weight averaging. Measured: 99.47 % ± 0.02 % test (3 seeds) in ~8 minutes on 2 cores.
        "accurate": {
            "hidden": (1024, 1024),
            "batch_norm": True,
            "affine": True,
            "elastic": True,
            "epochs": 70,
            "batch_size": 128,
            "lr": 0.1,
            "ema": 0.999,
        },
        # The fully connected reader: the accurate recipe, half the images also seen at low resolution.
        # Measured (benchmarks/reading_accuracy.py): other writers' 8x8 scans 82 % -> 92 %, whole numbers
        # 86 % -> 91 %, for 0.1 point of MNIST test accuracy.
        "reader": {
            "hidden": (1024, 1024),
            "batch_norm": True,
            "affine": True,
            "elastic": True,
            "low_resolution": 0.5,
            "epochs": 70,
            "batch_size": 128,
            "lr": 0.1,
            "ema": 0.999,
        },
    },
    "cnn": {
        # Chosen on validation (seed 0): (16, 32, 64) reached 98.9-99.1 % in 3 epochs, (24, 48, 96) 99.2 % in 2.
        "fast": {
            "channels": (24, 48, 96),
            "epochs": 2,
            "batch_size": 128,
            "lr": 0.1,
        },
        # Wider than fast; affine distortion against overfitting, EMA of the weights. Measured: 99.62 % ± 0.04 %
        # test (3 seeds) in ~7 minutes on 2 cores.
        "accurate": {
            "channels": (32, 64, 128),
            "affine": True,
            "epochs": 15,
            "batch_size": 128,
            "lr": 0.1,
            "ema": 0.999,
        },
        # The best reader measured: the accurate CNN, half the images also seen at low resolution. Measured
        # (benchmarks/reading_accuracy.py): UCI 8x8 scans 93.9 %, whole numbers 93.0 %, 99.59 % on MNIST.
        "reader": {
            "channels": (32, 64, 128),
            "affine": True,
            "low_resolution": 0.5,
            "epochs": 15,
            "batch_size": 128,
            "lr": 0.1,
            "ema": 0.999,
        },
    },
    "line": {
        # The small line model for tests and a first look, sized to train in under 3 minutes on 2 cores (the issue's
        # limit): on the 2-core Xeon, 60,000 lines took 221 s and 42,000 139 s when quiet (2026-12-02); on a busier
        # day (2026-12-03, 12-17 % of the CPU stolen) 42,000 took 218 s, these 36,000 197 s, 30,000 173 s. Lines
        # read exactly / touching numbers read: 51 % / 65.5 % at 42,000, 51 % / 62.5 % here, 46 % / 56.5 % at
        # 30,000; a peak rate of 0.005 read more touching numbers than 0.003 (65.5 against 61.5 % at 42,000).
        # With batches of similar widths (``training.POOL_BATCHES``, 2026-12-04) it took 47 s on a 2-core AMD EPYC and
        # read 51.8 % of test lines and 71.5 % of the slow test's touching numbers (those above: before them).
        "fast": {
            "channels": (16, 32, 64, 96),
            "context": (128,),
            "lines_per_epoch": 12_000,
            "val_lines": 500,
            "test_lines": 1_000,
            "epochs": 3,
            "batch_size": 64,
            "optimizer": "adam",
            "lr": 0.005,
            "weight_decay": 0.0,
        },
        # The line reader: a wider last block and two context layers, on 528,000 drawn lines. Sized to train in
        # under 30 minutes on 2 CPU cores (888 s on a 2-core AMD EPYC, 2026-12-04; the Xeon of 2026-12-03 took 1.5x as
        # long with the batches of before). Once batches held lines of similar widths (``training.POOL_BATCHES``), an
        # epoch took 38 s on the EPYC, and the time was put into epochs, not width (2026-12-04, validation
        # lines read exactly): 4 -> 8 epochs 63.0 -> 67.9 %; blocks of 24-48-96-160 and context 224-224 at 8 epochs
        # 69.8 % for 1.45x the time, about what the epochs give for it, and twice the multiply-adds per picture read.
        "reader": {
            "channels": (16, 32, 64, 128),
            "context": (160, 160),
            "lines_per_epoch": 22_000,
            "epochs": 24,
            "batch_size": 64,
            "optimizer": "adam",
            "lr": 0.003,
            "weight_decay": 0.0,
            "ema": 0.999,
        },
    },
}

DESCRIPTIONS = {
    ("mlp", "fast"): "784-256-10, 4 epochs: ~98 % in seconds",
    ("mlp", "accurate"): "784-1024-1024-10, batch norm, affine + elastic, EMA, 70 epochs: ~99.5 % in ~8 min",
    ("mlp", "reader"): "accurate + low-resolution augmentation: reads pictures best (numbers, small scans), ~99.3 %",
    ("cnn", "fast"): "3 conv blocks (24-48-96), 2 epochs: ~99.15 % in under a minute on 2 CPU cores",
    ("cnn", "accurate"): "3 conv blocks (32-64-128), affine augmentation, EMA, 15 epochs: ~99.6 % in ~7 min",
    ("cnn", "reader"): "accurate + low-resolution augmentation: the best model to read pictures with, ~99.6 %",
    ("line", "fast"): "a small CNN + CTC line model on 36,000 drawn lines: under 3 min on 2 CPU cores",
    ("line", "reader"): "CNN + CTC on 528,000 drawn lines of 0-12 digits: under 30 min on 2 CPU cores",
}


def preset_config(model: str = "mlp", preset: str = DEFAULT_PRESET) -> TrainConfig:
    """The TrainConfig of a model's preset; ConfigError names the choices for an unknown one."""
    if model not in PRESETS:
        raise ConfigError(f"no presets for model {model!r} ({', '.join(PRESETS)})")
    if preset not in PRESETS[model]:
        raise ConfigError(f"unknown preset {preset!r} for {model} ({', '.join(PRESETS[model])})")
    return TrainConfig().with_settings(model=model, **PRESETS[model][preset])


def preset_names() -> list[str]:
    return sorted({name for presets in PRESETS.values() for name in presets})


def describe_presets() -> str:
    """One line per model and preset, for `digitocr train --help`."""
    return "\n".join(
        f"  {model:4s} {name:9s} {DESCRIPTIONS.get((model, name), '')}"
        for model, presets in PRESETS.items()
        for name in presets
    )
