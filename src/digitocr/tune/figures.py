"""A study's pictures as PNG files: Optuna's optimisation history and parameter importances, and
``plots.accuracy_against_lr`` drawn from the trials' learning rates and accuracies.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from digitocr.tune.space import OPTIMIZER_RANGES


def save_plots(study, out: Path) -> dict[str, Path]:
    """Optimisation history, parameter importances and accuracy against learning rate, as PNG files."""
    import matplotlib.pyplot as plt  # no backend is forced: headless machines fall back to Agg by themselves
    from optuna.visualization import matplotlib as optuna_plots

    from digitocr.plots import accuracy_against_lr

    completed = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    figures = {
        "plot_history": lambda: optuna_plots.plot_optimization_history(study).figure,
        "plot_lr": lambda: accuracy_against_lr(
            *lr_points(study), title=f"{study.study_name}: accuracy against learning rate"
        ),
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


def lr_points(study) -> tuple[dict[str, list[tuple[float, float]]], dict[str, list[tuple[float, float]]]]:
    """(learning rate, validation accuracy) of the completed and of the pruned trials, by optimiser (their ranges
    differ); a pruned trial's accuracy is the last it reported."""
    completed = {optimizer: [] for optimizer in OPTIMIZER_RANGES}
    pruned = {optimizer: [] for optimizer in OPTIMIZER_RANGES}
    for trial in study.get_trials(deepcopy=False):
        if trial.state.name not in ("COMPLETE", "PRUNED"):
            continue
        config = trial.user_attrs["config"]
        if config["optimizer"] not in OPTIMIZER_RANGES or (trial.value is None and not trial.intermediate_values):
            continue
        points = completed if trial.state.name == "COMPLETE" else pruned
        points[config["optimizer"]].append((config["lr"], _last_value(trial)))
    return completed, pruned


def _last_value(trial) -> float:
    if trial.value is not None:
        return trial.value
    return trial.intermediate_values[max(trial.intermediate_values)]
