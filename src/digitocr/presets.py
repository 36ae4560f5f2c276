"""Named training configurations per model, in one place: ``fast`` (each model's default) and ``accurate``.

A preset is a set of overrides of ``TrainConfig``'s defaults, so ``TrainConfig()`` itself is the MLP's fast
preset. Hyperparameters were chosen on the validation split only; the README's table gives measured results.
"""

from __future__ import annotations

from typing import Any

from digitocr.config import TrainConfig
from digitocr.errors import ConfigError

DEFAULT_PRESET = "fast"

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "mlp": {
        "fast": {},  # the defaults: a 784-256-10 MLP, 4 epochs of one-cycle SGD, about 98 % in seconds
        # Not tuned (no 15-minute runs were affordable on the shared machine): the known recipe for fully
        # connected nets past 99 % — wide layers, affine + elastic distortion, long schedule, weight averaging.
        # ~10 s per epoch on one core, so 70 epochs fit the 15-minute budget on 2 cores.
        "accurate": {
            "model": {"hidden": (1024, 1024), "batch_norm": True},
            "augment": {"affine": True, "elastic": True},
            "epochs": 70, "batch_size": 128, "lr": 0.1, "ema": 0.999,
        },
    },
    "cnn": {
        # Chosen on validation (seed 0): (16, 32, 64) reached 98.9-99.1 % in 3 epochs, (24, 48, 96) 99.2 % in 2.
        "fast": {
            "model": {"name": "cnn", "channels": (24, 48, 96)},
            "epochs": 2, "batch_size": 128, "lr": 0.1,
        },
        # Checked for 2 epochs only (99.1 % validation); ~42 s per epoch on one core with augmentation, so
        # 15 epochs fit the 10-minute budget on 2 cores. Wider than fast; affine distortion against overfitting.
        "accurate": {
            "model": {"name": "cnn", "channels": (32, 64, 128)},
            "augment": {"affine": True},
            "epochs": 15, "batch_size": 128, "lr": 0.1, "ema": 0.999,
        },
    },
}

DESCRIPTIONS = {
    ("mlp", "fast"): "784-256-10, 4 epochs: ~98 % in seconds",
    ("mlp", "accurate"): "784-1024-1024-10, batch norm, affine + elastic augmentation, EMA, 70 epochs",
    ("cnn", "fast"): "3 conv blocks (24-48-96), 2 epochs: ~99.2 % in under a minute on 2 CPU cores",
    ("cnn", "accurate"): "3 conv blocks (32-64-128), affine augmentation, EMA, 15 epochs",
}


def preset_config(model: str = "mlp", preset: str = DEFAULT_PRESET) -> TrainConfig:
    """The TrainConfig of a model's preset; ConfigError names the choices for an unknown one."""
    if model not in PRESETS:
        raise ConfigError(f"no presets for model {model!r} ({', '.join(PRESETS)})")
    if preset not in PRESETS[model]:
        raise ConfigError(f"unknown preset {preset!r} for {model} ({', '.join(PRESETS[model])})")
    overrides = dict(PRESETS[model][preset])
    overrides["model"] = {"name": model, **overrides.get("model", {})}
    return TrainConfig.from_dict(overrides)


def preset_names() -> list[str]:
    return sorted({name for presets in PRESETS.values() for name in presets})


def describe_presets() -> str:
    """One line per model and preset, for `digitocr train --help`."""
    return "\n".join(f"  {model:4s} {name:9s} {DESCRIPTIONS.get((model, name), '')}"
                     for model, presets in PRESETS.items() for name in presets)
