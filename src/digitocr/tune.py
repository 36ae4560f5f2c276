"""Hyperparameter search with Optuna: trials maximise validation accuracy and never see the test set.

The study lives in an Optuna storage (SQLite under ``out`` by default, or any database URL), so several
processes or machines can share one search and an interrupted search resumes. At the end the best
configuration is retrained on all 60,000 training images and its test accuracy is measured once.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import math
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digitocr.config import ModelConfig, TrainConfig, TuneConfig
from digitocr.data import MNISTData, Split, load_mnist
from digitocr.data.sources import Log, log_to_stderr
from digitocr.errors import ConfigError, DigitOCRError, TrainingDiverged, TrainingInterrupted
from digitocr.training import EpochStats, TrainCallbacks

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
    return {"name": "mlp", "hidden": [width] * depth, "dropout": trial.suggest_float("dropout", 0.0, 0.5)}


def cnn_space(trial) -> dict[str, Any]:
    # Only fields every ModelConfig has; add the CNN's own (channels, ...) here once it exists.
    return {"name": "cnn", "dropout": trial.suggest_float("dropout", 0.0, 0.5)}


# model name -> its part of the search space (a trial -> the "model" section of a TrainConfig dict)
MODEL_SPACES: dict[str, Callable[[Any], dict[str, Any]]] = {"mlp": mlp_space, "cnn": cnn_space}


def default_params(model: str) -> dict[str, Any]:
    """`digitocr train`'s defaults as parameters of the search: the first trial of every new study.

    Starting from a known-good point means the search can only improve on it (at --max-epochs epochs).
    """
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


@dataclass
class TuneResult:
    study_name: str
    storage: str
    best_trial: int
    best_params: dict[str, Any]
    best_val_accuracy: float
    best_config: TrainConfig  # what best_config.json holds: the best trial's settings, on all training images
    n_trials: int  # trials of the study that count towards the budget (all workers, all runs)
    counts: dict[str, int]  # those by state: COMPLETE, PRUNED, FAIL (diverged)
    search_seconds: float  # this process's search
    test_accuracy: float  # of the final retrain; NaN when final=False
    final_seconds: float
    files: dict[str, Path]  # config, model, trials_csv, plots...

    def summary(self) -> dict:
        """What `digitocr tune --json` prints."""
        return {
            "best_params": self.best_params,
            "best_val_accuracy": self.best_val_accuracy,
            "test_accuracy": self.test_accuracy,
            "n_trials": self.n_trials,
            "config_path": str(self.files["config"]),
            "best_trial": self.best_trial,
            "counts": self.counts,
            "study": self.study_name,
            "storage": self.storage,
            "search_seconds": round(self.search_seconds, 1),
            "final_seconds": round(self.final_seconds, 1),
            "files": {name: str(path) for name, path in self.files.items()},
        }


class TuningInterrupted(TrainingInterrupted):
    """Ctrl-C during a trial: the trial is marked failed; running the same command again resumes the study."""

    def __init__(self, study_name: str, storage: str):
        # Not TrainingInterrupted's message: there is no checkpoint to --resume, the study itself resumes.
        DigitOCRError.__init__(
            self,
            f"tuning interrupted; study {study_name!r} is kept in {storage} (run the same command again to resume it)",
        )
        self.checkpoint_path = None


class _ReportToTrial(TrainCallbacks):
    """Feeds each epoch's validation accuracy to Optuna and stops the run when the pruner says so."""

    def __init__(self, trial):
        self.trial = trial

    def on_epoch_end(self, stats: EpochStats) -> None:
        import optuna

        self.trial.report(stats.val_accuracy, stats.epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {stats.epoch} (val accuracy {stats.val_accuracy:.4f})")


def check_model(name: str) -> None:
    from digitocr.models import MODELS

    if name not in MODEL_SPACES:
        raise ConfigError(f"no search space for model {name!r} ({', '.join(MODEL_SPACES)})")
    if name not in MODELS:
        raise ConfigError(f"model {name!r} is not available in this version of digitocr (models: {', '.join(MODELS)})")


def trial_config(trial, settings: TuneConfig) -> TrainConfig:
    """The TrainConfig a trial's sampled parameters describe, on top of ``settings.base``."""
    values = settings.base.to_dict()
    values.update(training_space(trial, settings.max_epochs))
    values["model"] = {**values["model"], **MODEL_SPACES[settings.model](trial)}
    return TrainConfig.from_dict(values)


def open_study(settings: TuneConfig):
    """Create the study, or load it when it exists (resume; other workers)."""
    import optuna
    import sqlalchemy.exc

    url = settings.storage_url()
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    # SQLite: wait for a busy database rather than fail when several local workers write at once.
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    storage = None
    for attempt in range(3):
        try:
            # No heartbeats: a Ctrl-C while Optuna starts its heartbeat thread leaves that thread running and
            # the process hanging at exit (Optuna 5.0). A killed worker's trial stays "running" and is ignored.
            storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
            break
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError) as error:
            # Workers starting together on a new database race to create its tables: the loser tries again.
            if attempt == 2:
                raise ConfigError(f"cannot open Optuna storage {url}: {error}".splitlines()[0]) from None
            time.sleep(1 + attempt)
        except ImportError as error:  # e.g. postgresql:// without a PostgreSQL driver installed
            raise ConfigError(
                f"cannot open Optuna storage {url}: {error} (pip install the database's driver, "
                f"e.g. psycopg2-binary or pymysql)".splitlines()[0]
            ) from None
        except (sqlalchemy.exc.SQLAlchemyError, ValueError) as error:
            raise ConfigError(f"cannot open Optuna storage {url}: {error}".splitlines()[0]) from None
    pruner = {
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
        "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=1, max_resource=settings.max_epochs),
        "none": optuna.pruners.NopPruner,
    }[settings.pruner]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # constant_liar: parallel workers treat each other's running trials as bad, so they spread out.
        sampler = optuna.samplers.TPESampler(multivariate=True, group=True, constant_liar=True, n_startup_trials=8)
    return optuna.create_study(
        study_name=settings.study_name(),
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        direction="maximize",
        load_if_exists=True,
    )


def counted_trials(study) -> list:
    """Trials that use up the budget: complete, pruned, or failed by diverging.

    Trials stopped by Ctrl-C are failed too, but they run again, so they do not count.
    """
    return [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state.name in ("COMPLETE", "PRUNED") or (t.state.name == "FAIL" and "error" in t.user_attrs)
    ]


def _stop_when_budget_reached(budget: int):
    from optuna.trial import TrialState

    started = datetime.datetime.now()

    def callback(study, trial) -> None:
        # Other workers' running trials will finish too: counting them keeps parallel workers from overshooting.
        # Only those started since this process began: an older "running" trial may be one a killed worker left.
        running = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if t.datetime_start and t.datetime_start >= started
        ]
        if len(counted_trials(study)) + len(running) >= budget:
            study.stop()

    return callback


def without_test(data: MNISTData) -> MNISTData:
    """The same splits with an empty test set, so no trial can look at it even by accident."""
    empty = Split(data.test.images[:0], data.test.labels[:0])
    return MNISTData(train=data.train, val=data.val, test=empty, sha256=data.sha256)


def tune(
    settings: TuneConfig | None = None,
    data: MNISTData | None = None,
    log: Log = log_to_stderr,
    on_trial: Callable[[Any, Any], None] | None = None,
    space: Callable[[Any, TuneConfig], TrainConfig] = trial_config,
) -> TuneResult:
    """Run trials until the study holds ``settings.trials`` finished ones (or ``settings.timeout``); retrain the best.

    ``data``: train/validation splits to search on (default: MNIST loaded once for all trials of this process);
    its test split is never used. ``on_trial(study, frozen_trial)`` is called after each trial this process
    finishes. ``space(trial, settings)`` builds a trial's TrainConfig (default: the registries above).
    """
    from digitocr.pipeline import train

    settings = settings or TuneConfig()
    settings.validate()
    check_model(settings.model)
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    study = open_study(settings)
    if space is trial_config and not study.trials:
        study.enqueue_trial(default_params(settings.model), skip_if_exists=True)
    remaining = settings.trials - len(counted_trials(study))
    started = time.perf_counter()
    if remaining > 0:
        if data is None:
            base = settings.base
            data = load_mnist(base.data.data_dir, val_size=base.data.val_size, seed=base.seed, log=log)
        search_data = without_test(data)
        worker = f"{socket.gethostname()}:{os.getpid()}"

        def objective(trial) -> float:
            try:
                config = space(trial, settings)
                trial.set_user_attr("config", config.to_dict())
                trial.set_user_attr("worker", worker)
                result = train(
                    config, out=None, data=search_data, callbacks=_ReportToTrial(trial), log=log, evaluate_test=False
                )
            except TrainingDiverged as error:
                trial.set_user_attr("error", str(error))
                raise
            except (TrainingInterrupted, KeyboardInterrupt) as interrupted:
                if isinstance(interrupted, TrainingInterrupted):
                    # train() saved a checkpoint of this trial; a search has no use for it.
                    Path(interrupted.checkpoint_path).unlink(missing_ok=True)
                # This trial ends as failed; the same parameters run first when the study resumes.
                trial.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
                raise TuningInterrupted(settings.study_name(), settings.storage_url()) from None
            trial.set_user_attr("epochs_run", len(result.history.epochs))
            return result.val_accuracy

        callbacks = [_stop_when_budget_reached(settings.trials)]
        if on_trial is not None:
            callbacks.append(on_trial)
        # A diverging trial is marked failed and the search goes on; any other error stops it.
        study.optimize(
            objective, n_trials=remaining, timeout=settings.timeout, callbacks=callbacks, catch=(TrainingDiverged,)
        )
    search_seconds = time.perf_counter() - started
    return _finish(study, settings, out, search_seconds, log, train)


def _finish(study, settings: TuneConfig, out: Path, search_seconds: float, log: Log, train) -> TuneResult:
    """Write best_config.json, the trials CSV and the plots; retrain the best configuration once."""
    completed = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if not completed:
        raise ConfigError(
            f"study {settings.study_name()!r} has no completed trial yet (all pruned or failed); run more trials"
        )
    best = study.best_trial
    # Trained on all 60,000 images: more data is worth more than a validation score nobody reads after the
    # search; the epoch count is the trial's, so no early stopping is needed. `digitocr train --config
    # best_config.json` then reproduces the reported test accuracy exactly.
    best_config = TrainConfig.from_dict(best.user_attrs["config"])
    best_config = dataclasses.replace(best_config, data=dataclasses.replace(best_config.data, val_size=0))
    files = {"config": out / "best_config.json"}
    files["config"].write_text(json.dumps(best_config.to_dict(), indent=2) + "\n")
    files["trials_csv"] = write_trials_csv(study, out / "trials.csv")
    files.update(save_plots(study, out))
    test_accuracy, final_seconds = math.nan, 0.0
    if settings.final:
        started = time.perf_counter()
        log(f"retraining trial {best.number}'s configuration on all training images...")
        result = train(best_config, out=out / "best_model.pth", log=log)
        test_accuracy, final_seconds = result.test_accuracy, time.perf_counter() - started
        files["model"] = result.model_path
    counted = counted_trials(study)
    counts = {name: sum(t.state.name == name for t in counted) for name in ("COMPLETE", "PRUNED", "FAIL")}
    return TuneResult(
        study_name=settings.study_name(),
        storage=settings.storage_url(),
        best_trial=best.number,
        best_params=best.params,
        best_val_accuracy=best.value,
        best_config=best_config,
        n_trials=len(counted),
        counts=counts,
        search_seconds=search_seconds,
        test_accuracy=test_accuracy,
        final_seconds=final_seconds,
        files=files,
    )


def describe_trial(study, trial) -> str:
    """One progress line: number, outcome, parameters, best so far."""
    params = " ".join(f"{name}={_short(value)}" for name, value in trial.params.items())
    seconds = trial.duration.total_seconds() if trial.duration else 0.0
    state = trial.state.name
    if state == "COMPLETE":
        outcome = f"val {trial.value:.2%}"
    elif state == "PRUNED":
        last = max(trial.intermediate_values, default=None)
        outcome = f"pruned at epoch {last} (val {trial.intermediate_values[last]:.2%})" if last else "pruned"
    else:
        outcome = f"failed: {trial.user_attrs.get('error', 'error')}"
    try:
        best = f"best {study.best_value:.2%} (trial {study.best_trial.number})"
    except ValueError:  # no completed trial yet
        best = "best -"
    return f"trial {trial.number:3d} {seconds:5.0f} s  {outcome} | {params} | {best}"


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def write_trials_csv(study, path: Path) -> Path:
    """One row per trial: number, state, value, seconds, epochs run, worker, then every parameter."""
    trials = study.get_trials(deepcopy=False)
    names = sorted({name for trial in trials for name in trial.params})
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["number", "state", "val_accuracy", "seconds", "epochs_run", "worker", *names, "error"])
        for t in trials:
            seconds = round(t.duration.total_seconds(), 2) if t.duration else ""
            epochs = t.user_attrs.get("epochs_run", max(t.intermediate_values, default=""))
            writer.writerow(
                [
                    t.number,
                    t.state.name,
                    "" if t.value is None else t.value,
                    seconds,
                    epochs,
                    t.user_attrs.get("worker", ""),
                    *(t.params.get(name, "") for name in names),
                    t.user_attrs.get("error", ""),
                ]
            )
    return path


def save_plots(study, out: Path) -> dict[str, Path]:
    """Optimisation history, parameter importances and accuracy against learning rate, as PNG files."""
    import matplotlib.pyplot as plt  # no backend is forced: headless machines fall back to Agg by themselves
    from optuna.visualization import matplotlib as optuna_plots

    completed = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    figures = {
        "plot_history": lambda: optuna_plots.plot_optimization_history(study).figure,
        "plot_lr": lambda: plot_accuracy_vs_lr(study),
    }
    # fANOVA needs a few completed trials that differ; with fewer it has nothing to say.
    if len(completed) >= 3:
        figures["plot_importances"] = lambda: optuna_plots.plot_param_importances(study).figure
    files = {}
    for name, make in figures.items():
        # rc_context: Optuna's plots switch the global style to ggplot; keep that from leaking into the caller's.
        with warnings.catch_warnings(), plt.rc_context():
            # "experimental" and "too few trials for an accurate importance": the picture says as much.
            warnings.simplefilter("ignore")
            figure = make()
        files[name] = out / f"{name.removeprefix('plot_')}.png"
        figure.savefig(files[name], dpi=120, bbox_inches="tight")
        plt.close(figure)
    return files


def plot_accuracy_vs_lr(study):
    """Validation accuracy against the learning rate, one colour per optimiser (their ranges differ).

    Pruned trials show their last reported accuracy as hollow markers.
    """
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for index, optimizer in enumerate(OPTIMIZER_RANGES):
        colour = f"C{index}"
        for state, filled in (("COMPLETE", True), ("PRUNED", False)):
            points = [
                (t.user_attrs["config"]["lr"], _last_value(t))
                for t in study.get_trials(deepcopy=False)
                if t.state.name == state
                and t.user_attrs["config"]["optimizer"] == optimizer
                and (t.value is not None or t.intermediate_values)
            ]
            if points:
                x, y = zip(*points)
                axes.scatter(
                    x,
                    y,
                    s=28,
                    label=f"{optimizer} ({state.lower()})",
                    edgecolors=colour,
                    facecolors=colour if filled else "none",
                )
    axes.set_xscale("log")
    axes.set_xlabel("peak learning rate")
    axes.set_ylabel("validation accuracy")
    axes.set_title(f"{study.study_name}: accuracy against learning rate")
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    return figure


def _last_value(trial) -> float:
    if trial.value is not None:
        return trial.value
    return trial.intermediate_values[max(trial.intermediate_values)]
