"""What a study reports in words and tables: the one-line progress of each trial and the CSV of all trials."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


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
