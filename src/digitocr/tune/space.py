"""What a tuning trial samples: the shared training part (the line model has its own), one model part per
architecture, and the first trial.

A space returns settings by flat name (``TrainConfig.with_settings``); ``trial_config`` lays them over the
study's base config. Nothing here imports Optuna: a trial is any object with ``suggest_*`` methods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from digitocr.config import ModelConfig, TrainConfig, TuneConfig
from digitocr.errors import ConfigError
from digitocr.presets import PRESETS, preset_config

# Per-optimiser ranges: SGD and AdamW want learning rates and weight decays two orders of magnitude
# apart, so each has its own Optuna parameters ("sgd_lr", "adamw_lr", ...) rather than one range
# that would waste half of every trial budget on values the other optimiser needs.
OPTIMIZER_RANGES = {
    "sgd": {"lr": (0.01, 0.5), "weight_decay": (1e-6, 1e-3)},  # coupled L2, Nesterov momentum 0.9
    "adamw": {"lr": (3e-4, 1e-2), "weight_decay": (1e-4, 0.3)},  # decoupled decay, multiplied by lr
}


def training_space(trial, max_epochs: int) -> dict[str, Any]:
    """Optimiser, schedule and regularisation: the part of the search every model shares."""
    optimizer = trial.suggest_categorical("optimizer", list(OPTIMIZER_RANGES))
    ranges = OPTIMIZER_RANGES[optimizer]
    return {
        "epochs": max_epochs,  # fixed, so per-epoch accuracies of all trials are comparable for pruning
        "optimizer": optimizer,
        "lr": trial.suggest_float(f"{optimizer}_lr", *ranges["lr"], log=True),
        "weight_decay": trial.suggest_float(f"{optimizer}_weight_decay", *ranges["weight_decay"], log=True),
        "batch_size": trial.suggest_categorical("batch_size", [128, 256, 512]),
        "schedule": trial.suggest_categorical("schedule", ["onecycle", "cosine"]),
        "label_smoothing": trial.suggest_float("label_smoothing", 0.0, 0.2),
        "patience": 0,
    }


def mlp_space(trial) -> dict[str, Any]:
    depth = trial.suggest_int("layers", 1, 3)
    width = trial.suggest_categorical("width", [128, 256, 512, 1024])
    return {"model": "mlp", "hidden": [width] * depth, "dropout": trial.suggest_float("dropout", 0.0, 0.5)}


def cnn_space(trial) -> dict[str, Any]:
    # Only fields every ModelConfig has; add the CNN's own (channels, ...) here once it exists.
    return {"model": "cnn", "dropout": trial.suggest_float("dropout", 0.0, 0.5)}


# A line model's trial draws as many lines an epoch as its fast preset (8,000), not the default 40,000: the fast
# preset's epochs take a couple of minutes on 2 cores, so a search's budget holds several trials.
LINE_TRIAL_LINES = {name: PRESETS["line"]["fast"][name] for name in ("lines_per_epoch", "val_lines")}
LINE_BLOCKS = (1, 2, 4, 6)  # the line model's block widths as multiples of the first: the presets' 16-32-64-96


def line_training_space(trial, max_epochs: int) -> dict[str, Any]:
    """The line model's own training part: Adam without weight decay, as its presets train it; batches of lines
    (thousands an epoch, not 55,000 digits); no label smoothing to search (CTC's loss has none)."""
    return {
        "epochs": max_epochs,
        "optimizer": "adam",
        "lr": trial.suggest_float("adam_lr", 1e-3, 1e-2, log=True),
        "weight_decay": 0.0,
        "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128]),
        "schedule": trial.suggest_categorical("schedule", ["onecycle", "cosine"]),
        "patience": 0,
        **LINE_TRIAL_LINES,
    }


def line_space(trial) -> dict[str, Any]:
    width = trial.suggest_categorical("line_width", [8, 16, 24])  # the first block's channels
    context = trial.suggest_categorical("context_width", [64, 128, 192])
    return {
        "model": "line",
        "channels": [width * multiple for multiple in LINE_BLOCKS],
        "context": [context] * trial.suggest_int("context_layers", 1, 2),
    }


# model name -> its part of the search space (a trial -> model settings by flat name)
MODEL_SPACES: dict[str, Callable[[Any], dict[str, Any]]] = {"mlp": mlp_space, "cnn": cnn_space, "line": line_space}
# models whose training part is their own rather than ``training_space`` (a trial, max epochs -> settings)
TRAINING_SPACES: dict[str, Callable[[Any, int], dict[str, Any]]] = {"line": line_training_space}


def default_params(model: str) -> dict[str, Any]:
    """`digitocr train`'s defaults as parameters of the search: the first trial of every new study (the line
    model's: its fast preset's).

    Starting from a known-good point means the search can only improve on it (at --max-epochs epochs).
    """
    if model == "line":
        fast = preset_config("line")
        return {
            "adam_lr": fast.lr,
            "batch_size": fast.batch_size,
            "schedule": fast.schedule,
            "line_width": fast.model.channels[0],
            "context_width": fast.model.context[0],
            "context_layers": len(fast.model.context),
        }
    train, model_defaults = TrainConfig(), ModelConfig()
    params = {
        "optimizer": train.optimizer,
        f"{train.optimizer}_lr": train.lr,
        f"{train.optimizer}_weight_decay": train.weight_decay,
        "batch_size": train.batch_size,
        "schedule": train.schedule,
        "label_smoothing": train.label_smoothing,
        "dropout": model_defaults.dropout,
    }
    if model == "mlp":
        params.update(layers=len(model_defaults.hidden), width=model_defaults.hidden[0])
    return params


def check_model(name: str) -> None:
    from digitocr.models import MODELS

    if name not in MODEL_SPACES:
        raise ConfigError(f"no search space for model {name!r} ({', '.join(MODEL_SPACES)})")
    if name not in MODELS:
        raise ConfigError(f"model {name!r} is not available in this version of digitocr (models: {', '.join(MODELS)})")


def trial_config(trial, settings: TuneConfig) -> TrainConfig:
    """The TrainConfig a trial's sampled parameters describe, on top of ``settings.base``."""
    training = TRAINING_SPACES.get(settings.model, training_space)(trial, settings.max_epochs)
    return settings.base.with_settings(**training, **MODEL_SPACES[settings.model](trial))
