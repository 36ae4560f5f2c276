"""``tune()``: run a study's trials through ``pipeline.train`` on the validation split, then retrain the best.

Trials never see the test set; the best configuration is retrained on all training images and its test accuracy
is measured once, with best_config.json, the trials CSV and the plots written under ``out``.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digitocr.config import TrainConfig, TuneConfig
from digitocr.data import MNISTData, Split, load_mnist
from digitocr.data.sources import Log, silent
from digitocr.errors import ConfigError, DigitOCRError, TrainingDiverged, TrainingInterrupted
from digitocr.training import EpochStats, InterruptFlag, TrainCallbacks
from digitocr.tune.figures import save_plots
from digitocr.tune.results import write_trials_csv
from digitocr.tune.space import check_model, default_params, trial_config
from digitocr.tune.study import counted_trials, open_study, run_again, stop_when_budget_reached


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


def without_test(data: MNISTData) -> MNISTData:
    """The same splits with an empty test set, so no trial can look at it even by accident."""
    empty = Split(data.test.images[:0], data.test.labels[:0])
    return MNISTData(train=data.train, val=data.val, test=empty, sha256=data.sha256)


def tune(
    settings: TuneConfig | None = None,
    data: MNISTData | None = None,
    log: Log = silent,
    on_trial: Callable[[Any, Any], None] | None = None,
    space: Callable[[Any, TuneConfig], TrainConfig] = trial_config,
) -> TuneResult:
    """Run trials until the study holds ``settings.trials`` finished ones (or ``settings.timeout``); retrain the best.

    ``data``: train/validation splits to search on (default: MNIST loaded once for all trials of this process);
    its test split is never used. ``on_trial(study, frozen_trial)`` is called after each trial this process
    finishes. ``space(trial, settings)`` builds a trial's TrainConfig (default: the registries of tune.space).
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
                if ctrl_c.raised:  # pressed between trials: this one is cut short before it starts
                    raise KeyboardInterrupt
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
                run_again(trial.study, trial)
                raise TuningInterrupted(settings.study_name(), settings.storage_url()) from None
            trial.set_user_attr("epochs_run", len(result.history.epochs))
            return result.val_accuracy

        callbacks = [stop_when_budget_reached(settings.trials)]
        if on_trial is not None:
            callbacks.append(on_trial)
        # Ctrl-C outside a trial's training waits for the next trial to start: landing in Optuna's own code, it
        # could leave the heartbeat thread Optuna has just started never joined, and the process hanging at exit
        # (Optuna 5.0). A Ctrl-C pressed while one is held stops at once.
        with InterruptFlag() as ctrl_c:
            # A diverging trial is marked failed and the search goes on; any other error stops it.
            study.optimize(
                objective, n_trials=remaining, timeout=settings.timeout, callbacks=callbacks, catch=(TrainingDiverged,)
            )
            if ctrl_c.raised:  # pressed after the last trial
                raise TuningInterrupted(settings.study_name(), settings.storage_url())
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
    best_config = TrainConfig.from_dict(best.user_attrs["config"]).with_settings(val_size=0)
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
