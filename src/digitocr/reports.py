"""Reports of a trained model: the numbers the plots need (predictions, mistakes, class means) and a folder
of PNGs + ``metrics.json`` written by `digitocr train --report-dir` and `digitocr evaluate --report-dir`; for a
line model, its test lines as read and its exact-line metrics.

The figures come from ``plots``; this module computes what they show and writes the files.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from digitocr import ctc, plots
from digitocr.config import NUM_CLASSES, LinesConfig
from digitocr.data import MNISTData, Split, load_mnist
from digitocr.data.lines import fixed_lines
from digitocr.evaluation import TEST_LINES_SEED, evaluate, evaluate_lines
from digitocr.inference import line_columns, predict_logits
from digitocr.jsonable import jsonable
from digitocr.modelfile import ModelFile
from digitocr.models import reads_lines
from digitocr.pipeline import TrainResult

REPORT_FIGURES = ("samples", "class_distribution", "training_curves", "confusion_matrix", "misclassified")


@dataclass
class Predictions:
    predicted: np.ndarray  # (N,) int64, the most probable digit
    confidence: np.ndarray  # (N,) float, its softmax probability
    probabilities: np.ndarray  # (N, 10)


def predict(model: nn.Module, split: Split) -> Predictions:
    probabilities = torch.softmax(predict_logits(model, split.images).float(), dim=1).cpu().numpy()
    return Predictions(predicted=probabilities.argmax(1), confidence=probabilities.max(1), probabilities=probabilities)


def misclassified(split: Split, predictions: Predictions, limit: int = 32) -> np.ndarray:
    """Indices of wrongly predicted images, the most confident mistakes first."""
    wrong = np.flatnonzero(predictions.predicted != split.labels.cpu().numpy())
    return wrong[np.argsort(-predictions.confidence[wrong], kind="stable")][:limit]


def label_counts(labels: torch.Tensor) -> list[int]:
    return labels.cpu().bincount(minlength=NUM_CLASSES).tolist()


def class_means(split: Split) -> np.ndarray:
    """(10, 28, 28): the average image of each digit."""
    images, labels = split.images.cpu()[:, 0], split.labels.cpu()
    return torch.stack([images[labels == digit].mean(0) for digit in range(NUM_CLASSES)]).numpy()


def atypical_examples(split: Split, per_class: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Hard examples found without a model: per digit, the images most like another digit's mean image.

    Likeness is the cosine similarity to each class mean, so a faint digit is not "like a 1" just for having
    little ink. Returns (indices, the most similar other digit), ``per_class`` images per digit, digit by digit.
    """
    images, labels = split.images.cpu().flatten(1), split.labels.cpu()
    means = torch.from_numpy(class_means(split)).flatten(1)
    similarity = F.normalize(images, dim=1) @ F.normalize(means, dim=1).T  # (N, 10)
    own = similarity.gather(1, labels[:, None])[:, 0]
    other_similarity, other_digit = similarity.scatter(1, labels[:, None], -math.inf).max(1)
    margin = own - other_similarity  # negative: nearer another digit's mean than its own
    chosen = []
    for digit in range(NUM_CLASSES):
        members = torch.nonzero(labels == digit)[:, 0]
        chosen.append(members[torch.argsort(margin[members])[:per_class]])
    indices = torch.cat(chosen)
    return indices.numpy(), other_digit[indices].numpy()


def write_report(
    directory: str | Path,
    model: nn.Module,
    test: Split,
    metrics: dict | None = None,
    history: list[dict] | None = None,
    counts: dict[str, list[int]] | None = None,
    extra: dict | None = None,
    gallery_size: int = 32,
) -> dict[str, Path]:
    """Write the report PNGs and ``metrics.json`` into ``directory``; return {name: path}.

    ``metrics`` is evaluate()'s output on ``test`` (computed when absent); without a ``history`` there is no
    training-curves figure; ``counts`` maps split names to per-class counts (default: the test split's).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    metrics = metrics if metrics is not None else evaluate(model, test)
    predictions = predict(model, test)
    wrong = misclassified(test, predictions, gallery_size)
    labels = test.labels.cpu().numpy()
    sample = np.arange(min(32, len(test)))
    figures = {
        "samples": plots.sample_grid(
            test.images[sample],
            labels[sample],
            predictions.predicted[sample],
            title="Test samples: true label / model prediction",
        ),
        "class_distribution": plots.class_distribution(counts or {"test": label_counts(test.labels)}),
        "confusion_matrix": plots.confusion_matrix(metrics["confusion_matrix"]),
        "misclassified": plots.mistake_gallery(
            test.images[wrong],
            labels[wrong],
            predictions.predicted[wrong],
            predictions.confidence[wrong],
            title=f"Most confident mistakes ({len(wrong)} of "
            f"{int((predictions.predicted != labels).sum()):,} misclassified test digits)",
        ),
    }
    return _write_files(directory, figures, {**metrics, **(extra or {})}, history)


def _write_files(directory: Path, figures: dict, report: dict, history: list[dict] | None) -> dict[str, Path]:
    """The figures as PNGs (and the training curves, given a history), then ``metrics.json`` with ``report``."""
    if history:
        figures["training_curves"] = plots.training_curves(history)
    paths = {}
    for name, figure in figures.items():
        paths[name] = directory / f"{name}.png"
        plots.save_figure(figure, paths[name])
    paths["metrics"] = directory / "metrics.json"
    report = {**report, "history": history, "report_files": sorted(p.name for p in paths.values())}
    paths["metrics"].write_text(json.dumps(jsonable(report), indent=2) + "\n")
    return paths


LINE_GALLERY_SIZE = 16  # test lines shown with what the model read: a page's worth


def write_line_report(
    directory: str | Path,
    model: nn.Module,
    test: Split,
    config: LinesConfig,
    metrics: dict | None = None,
    history: list[dict] | None = None,
    extra: dict | None = None,
) -> dict[str, Path]:
    """A line model's report: test lines with what it read, the training curves (given a ``history``) and
    ``metrics.json``; ``metrics`` is ``evaluate_lines``'s output on ``test`` (computed when absent). A line model
    classifies no 28x28 digit, so the classifier's per-digit figures have no counterpart here."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    metrics = metrics if metrics is not None else evaluate_lines(model, test, config)
    sample = next(fixed_lines(test, LINE_GALLERY_SIZE, config, TEST_LINES_SEED))
    reads = ctc.texts(*line_columns(model, sample.images, sample.widths))
    exact = sum(read == truth for read, truth in zip(reads, sample.texts()))
    title = (
        f"Test lines: {exact} of {len(sample)} read exactly ({metrics['test_accuracy']:.2%} of {metrics['lines']:,})"
    )
    figures = {"lines": plots.line_gallery(sample.images, sample.widths, sample.texts(), reads, title=title)}
    return _write_files(directory, figures, {**metrics, **(extra or {})}, history)


def write_train_report(directory: str | Path, result: TrainResult, data: MNISTData | None = None) -> dict[str, Path]:
    """The report of a `digitocr train` run. ``data`` defaults to the run's own splits, reloaded by its config."""
    config = result.config
    if data is None:
        data = load_mnist(config.data.data_dir, val_size=config.data.val_size, seed=config.seed)
    if reads_lines(config.model):
        history, extra = result.history.to_list(), result.summary()
        return write_line_report(directory, result.model, data.test, config.lines, result.metrics, history, extra)
    counts = {name: label_counts(getattr(data, name).labels) for name in ("train", "val", "test")}
    return write_report(
        directory,
        result.model,
        data.test,
        result.metrics,
        history=result.history.to_list(),
        counts=counts,
        extra=result.summary(),
    )


def write_model_report(
    directory: str | Path,
    model_file: ModelFile,
    test: Split,
    metrics: dict | None = None,
    model_path: str | Path | None = None,
) -> dict[str, Path]:
    """The report of `digitocr evaluate MODEL` (a classifier's or a line model's): training curves come from the
    history the model file stores; ``test`` is the test split, whose digits a line model's test lines are made of."""
    stored = model_file.metadata.get("metrics") or {}
    extra = {
        "model_path": str(model_path) if model_path else None,
        "config": model_file.config.to_dict(),
        "data_sha256": model_file.metadata.get("data_sha256"),
    }
    if reads_lines(model_file.config.model):
        lines = model_file.config.lines
        return write_line_report(directory, model_file.model, test, lines, metrics, stored.get("history"), extra)
    return write_report(directory, model_file.model, test, metrics, history=stored.get("history"), extra=extra)
