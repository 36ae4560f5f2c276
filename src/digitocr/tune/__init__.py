"""Hyperparameter search with Optuna: trials maximise validation accuracy and never see the test set.

The study lives in an Optuna storage (SQLite under ``out`` by default, or any database URL), so several
processes or machines can share one search and an interrupted search resumes. At the end the best
configuration is retrained on all 60,000 training images and its test accuracy is measured once.

One job per module, in import order: ``space`` (what a trial samples), ``study`` (storage, pruner, budget),
``results`` (the trial line, the CSV), ``figures`` (the PNGs), ``search`` (``tune()`` itself). The names below
are imported lazily, so `digitocr --help` can list the search spaces without loading PyTorch or Optuna.
"""

from __future__ import annotations

import importlib

# module -> the public names it holds, in the flow's order
_MODULES = {
    "space": (
        "OPTIMIZER_RANGES", "MODEL_SPACES", "TRAINING_SPACES", "training_space", "line_training_space", "mlp_space",
        "cnn_space", "line_space", "default_params", "check_model", "trial_config",
    ),
    "study": ("PRUNERS", "open_study", "counted_trials"),
    "results": ("describe_trial", "write_trials_csv"),
    "figures": ("save_plots",),
    "search": ("tune", "TuneResult", "TuningInterrupted", "without_test"),
}  # fmt: skip
_API = {name: f"digitocr.tune.{module}" for module, names in _MODULES.items() for name in names}

__all__ = [*_API]  # noqa: PLE0604  (the lazily imported names: strings, as keys)


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'digitocr.tune' has no attribute {name!r}")
