"""The one place that wires data -> model -> train -> evaluate -> save: what `digitocr train` runs."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from digitocr import distributed
from digitocr.config import DEFAULT_MODEL_PATH, TrainConfig
from digitocr.data import MNISTData, load_mnist
from digitocr.data.sources import Log, silent
from digitocr.devices import resolve_device
from digitocr.evaluation import evaluate, evaluate_lines
from digitocr.inference import ShiftTTA, accuracy
from digitocr.modelfile import save_model, writable_model_path
from digitocr.models import build_model, reads_lines
from digitocr.training import History, TrainCallbacks, default_checkpoint_path, fit


@dataclass
class TrainResult:
    model: nn.Module
    config: TrainConfig
    history: History
    val_accuracy: float
    test_accuracy: float
    metrics: dict  # evaluate()'s output on the test set
    train_seconds: float  # the training loop alone, validation included
    model_path: Path | None
    data_sha256: str

    def summary(self) -> dict:
        """What `digitocr train --json` prints."""
        return {
            "test_accuracy": self.test_accuracy,
            "val_accuracy": self.val_accuracy,
            "epochs": len(self.history.epochs),
            "best_epoch": self.history.best_epoch,
            "train_seconds": round(self.train_seconds, 3),
            "model_path": str(self.model_path) if self.model_path else None,
            "history": [
                {
                    "epoch": s.epoch,
                    "seconds": round(s.seconds, 3),
                    "train_loss": s.train_loss,
                    "val_accuracy": s.val_accuracy,
                }
                for s in self.history.epochs
            ],
            "config": self.config.to_dict(),
        }


def _final_metrics(model, data: MNISTData, config: TrainConfig, history: History, evaluate_test: bool, device):
    """(test metrics, validation accuracy) of the finished model; the test split only if ``evaluate_test``."""
    if reads_lines(config.model):
        metrics = evaluate_lines(model, data.test, config.lines) if evaluate_test else {"test_accuracy": math.nan}
        # The validation lines are the training run's own; the best epoch's score is the model's.
        best = history.epochs[history.best_epoch - 1].val_accuracy if history.best_epoch else math.nan
        return {"per_class": {}, **metrics}, best
    reported = ShiftTTA(model) if config.tta else model  # the saved model stays the plain one
    metrics = evaluate(reported, data.test) if evaluate_test else {"test_accuracy": math.nan, "per_class": {}}
    return metrics, accuracy(reported, data.val.to(device))


@distributed.peers_watched()  # a rank that dies mid-run: one line on the others, and rank 0 saves nothing
def train(
    config: TrainConfig | None = None,
    out: str | Path | None = DEFAULT_MODEL_PATH,
    callbacks: TrainCallbacks | None = None,
    resume: str | Path | None = None,
    data: MNISTData | None = None,
    log: Log = silent,
    evaluate_test: bool = True,
) -> TrainResult:
    """Train a model as ``config`` says, report its test accuracy once, and save it to ``out`` (None: don't).

    ``data`` may be passed in to reuse splits already in memory (tuning, tests); it must match the config's seed.
    ``evaluate_test=False`` leaves the test split unseen (tuning trials): test_accuracy is NaN, no per-class metrics.
    """
    config = config or TrainConfig()
    config.validate()
    device = distributed.init_from_env(resolve_device(config.device))  # joins torchrun's ranks, if any
    if not distributed.is_main():
        log = silent  # under torchrun one rank speaks for all
    # Before any data or training: where the model goes must be writable. The checkpoint beside it records
    # the absolute path, so a resumed run saves there from whatever folder it is started in.
    # Every rank agrees on the path; rank 0 alone, which saves, checks it.
    if out is None:
        model_target = None
    elif distributed.is_main():
        model_target = writable_model_path(out)
    else:
        model_target = Path(out).expanduser().absolute()
    if data is None:
        data = load_mnist(config.data.data_dir, val_size=config.data.val_size, seed=config.seed, log=log)
    torch.manual_seed(config.seed)
    model = build_model(config.model).to(device)
    # Without a model path (tuning trials) an interrupted run must not overwrite the user's trained_model.ckpt.
    checkpoint = default_checkpoint_path(model_target) if model_target is not None else None
    started = time.perf_counter()
    history = fit(
        distributed.wrap(model),
        data,
        config,
        callbacks,
        checkpoint_path=checkpoint,
        resume_from=resume,
        model_path=model_target,
    )
    train_seconds = time.perf_counter() - started
    metrics, val_accuracy = _final_metrics(model, data, config, history, evaluate_test, device)
    model_path = None
    if out is not None and distributed.is_main():
        model_path = save_model(
            model_target,
            model,
            config,
            data_sha256=data.sha256,
            metrics={
                "test_accuracy": metrics["test_accuracy"],
                "val_accuracy": val_accuracy,
                "per_class": metrics["per_class"],
                **{name: metrics[name] for name in ("digit_error_rate", "per_length") if name in metrics},
                "train_seconds": train_seconds,
                "epochs": len(history.epochs),
                "history": history.to_list(),
            },
        )
        if resume is not None and Path(resume).absolute() == checkpoint:
            checkpoint.unlink(missing_ok=True)  # the run it saved is finished
    return TrainResult(
        model=model,
        config=config,
        history=history,
        val_accuracy=val_accuracy,
        test_accuracy=metrics["test_accuracy"],
        metrics=metrics,
        train_seconds=train_seconds,
        model_path=model_path,
        data_sha256=data.sha256,
    )
