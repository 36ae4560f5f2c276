"""Matplotlib figures built from numbers the other modules return: samples, class counts, curves, errors, tuning.

Every function returns a ``matplotlib.figure.Figure`` made without pyplot, so nothing depends on a display or
a global backend: PNGs render through Agg on a headless machine and a notebook shows the returned figure.
Inputs are plain arrays (tensors are accepted): images (N, 28, 28) or (N, 1, 28, 28) in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from digitocr.config import CLASS_NAMES, NUM_CLASSES

# Tab10's first colours for the splits and the two curves; grey-reversed shows ink dark on white paper.
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")
DIGIT_CMAP = "gray_r"


def _array(values) -> np.ndarray:
    """A tensor or sequence as a numpy array (on the CPU, detached)."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def _images(images) -> np.ndarray:
    """(N, 28, 28) float pixels from (N, 28, 28) or (N, 1, 28, 28)."""
    images = _array(images)
    return images.reshape(len(images), *images.shape[-2:])


def _grid(count: int, cols: int, cell: float, title_space: float = 0.5) -> tuple[Figure, np.ndarray]:
    """A figure with ``count`` image cells in rows of ``cols``, axes off; unused cells hidden."""
    cols = max(1, min(cols, count))
    rows = max(1, math.ceil(count / cols))
    figure = Figure(figsize=(cols * cell, rows * cell + title_space), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, cols, squeeze=False).ravel())
    for ax in axes:
        ax.set_axis_off()
    return figure, axes


def digit_gallery(
    images,
    captions: Sequence[str],
    cols: int = 8,
    title: str = "Digits",
    colours: Sequence[str] | None = None,
    cell: float = 1.5,
) -> Figure:
    """Each image with its caption (one or two lines) under a title; the building block of the grids below."""
    images = _images(images)
    if len(images) == 0:
        figure = Figure(figsize=(6, 1.5), layout="constrained")
        ax = figure.subplots()
        ax.set_axis_off()
        ax.text(0.5, 0.5, "nothing to show", ha="center", va="center", fontsize=12)
    else:
        figure, axes = _grid(len(images), cols, cell)
        for i, (ax, image) in enumerate(zip(axes, images)):
            ax.imshow(image, cmap=DIGIT_CMAP, vmin=0, vmax=1)
            ax.set_title(captions[i], fontsize=9, color=colours[i] if colours else "black")
    figure.suptitle(title, fontsize=13)
    return figure


def sample_grid(images, labels, predictions=None, cols: int = 8, title: str = "MNIST samples") -> Figure:
    """Each image with its label (and the model's prediction, red when wrong)."""
    labels = _array(labels)
    if predictions is None:
        return digit_gallery(images, [f"label {label}" for label in labels], cols, title, cell=1.3)
    predictions = _array(predictions)
    captions = [f"label {label}\npred {predicted}" for label, predicted in zip(labels, predictions)]
    colours = ["tab:red" if label != predicted else "black" for label, predicted in zip(labels, predictions)]
    return digit_gallery(images, captions, cols, title, colours)


def mistake_gallery(
    images, labels, predictions, confidences, cols: int = 8, title: str = "Misclassified test digits"
) -> Figure:
    """Images with their true label, the predicted one and the model's probability for it."""
    captions = [
        f"true {label}\npred {predicted} ({confidence:.0%})"
        for label, predicted, confidence in zip(_array(labels), _array(predictions), _array(confidences))
    ]
    return digit_gallery(images, captions, cols, title)


LINE_ROW_INCHES = 0.6  # height of a line's picture in line_gallery, its caption aside


def line_gallery(images, widths, truths: Sequence[str], reads: Sequence[str], title: str = "Test lines") -> Figure:
    """Lines of digits (N, 1, 32, W) or (N, 32, W), each cut to its own ``widths`` column, one a row, with the
    digits drawn in it and what the model read (red when not exactly those)."""
    images, widths = _images(images), _array(widths)
    rows = max(len(images), 1)
    # The widest line spans the figure: every line at the same scale, so their sizes compare.
    widest = int(widths.max()) if len(widths) else 1
    aspect = widest / images.shape[1] if len(images) else 4
    figure = Figure(figsize=(min(max(4, LINE_ROW_INCHES * aspect), 16), 0.9 * rows + 0.5), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, 1, squeeze=False).ravel())
    for ax in axes:
        ax.set_axis_off()
    if len(images) == 0:
        axes[0].text(0.5, 0.5, "nothing to show", ha="center", va="center", fontsize=12)
    for ax, image, width, truth, read in zip(axes, images, widths, truths, reads):
        ax.imshow(image[:, : int(width)], cmap=DIGIT_CMAP, vmin=0, vmax=1, extent=(0, int(width), image.shape[0], 0))
        ax.set_xlim(0, widest)
        ax.set_title(
            f"true {truth or '(blank)'}   read {read or '(nothing)'}",
            fontsize=9,
            loc="left",
            color="black" if read == truth else "tab:red",
        )
    figure.suptitle(title, fontsize=13)
    return figure


def class_distribution(counts: Mapping[str, Sequence[int]], title: str = "Share of each digit") -> Figure:
    """Grouped bars: ``counts`` maps a split name ("train", "test", ...) to its 10 per-class counts.

    Bars show each class's share of its split, so splits of different sizes compare at a glance.
    """
    counts = {name: values for name, values in counts.items() if _array(values).sum() > 0}  # e.g. no val split
    figure = Figure(figsize=(9, 4.5), layout="constrained")
    ax = figure.subplots()
    width = 0.8 / max(len(counts), 1)
    positions = np.arange(NUM_CLASSES)
    highest = 100 / NUM_CLASSES
    for i, (name, values) in enumerate(counts.items()):
        values = _array(values)
        shares = 100 * values / max(values.sum(), 1)
        highest = max(highest, shares.max())
        offset = (i - (len(counts) - 1) / 2) * width
        ax.bar(
            positions + offset,
            shares,
            width,
            label=f"{name} ({int(values.sum()):,} images)",
            color=COLOURS[i % len(COLOURS)],
        )
    ax.axhline(100 / NUM_CLASSES, color="grey", linestyle="--", linewidth=1, label="perfectly balanced (10 %)")
    ax.set_ylim(0, highest * 1.3)  # headroom for the legend
    ax.set_xticks(positions, CLASS_NAMES)
    ax.set_xlabel("digit")
    ax.set_ylabel("share of the split's images (%)")
    ax.set_title(title)
    ax.legend(loc="upper center", ncols=2, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    return figure


def pixel_histogram(images, bins: int = 51, title: str = "Pixel intensities") -> Figure:
    """Histogram of every pixel value, log-scaled counts: most pixels are background (0), the ink is near 1."""
    values = _array(images).ravel()
    figure = Figure(figsize=(8, 4), layout="constrained")
    ax = figure.subplots()
    ax.hist(values, bins=bins, range=(0, 1), color=COLOURS[0])
    ax.set_yscale("log")
    ax.set_xlabel("pixel value (0 = background, 1 = ink)")
    ax.set_ylabel("number of pixels (log scale)")
    ax.set_title(f"{title}: mean {values.mean():.4f}, std {values.std():.4f}")
    ax.grid(alpha=0.3)
    return figure


def class_mean_images(means, title: str = "Mean image of each digit") -> Figure:
    """The 10 class means (10, 28, 28), e.g. from ``reports.class_means``."""
    means = _images(means)
    means = means / np.maximum(means.max(axis=(1, 2), keepdims=True), 1e-12)  # each stretched to full contrast
    return digit_gallery(means, [f"digit {name}" for name in CLASS_NAMES], NUM_CLASSES // 2, title, cell=1.6)


def training_curves(history: Sequence[Mapping], title: str = "Training curves") -> Figure:
    """Mean train loss and validation accuracy per epoch, from ``History.to_list()`` (or a model file's)."""
    epochs = [row["epoch"] for row in history]
    loss = [row["train_loss"] for row in history]
    accuracy = [100 * row["val_accuracy"] if row["val_accuracy"] is not None else math.nan for row in history]
    figure = Figure(figsize=(10, 4), layout="constrained")
    left, right = figure.subplots(1, 2)
    left.plot(epochs, loss, marker="o", color=COLOURS[0])
    left.set_title("train loss (mean over each epoch)")
    left.set_ylabel("cross-entropy loss")
    right.plot(epochs, accuracy, marker="o", color=COLOURS[1])
    right.set_title("validation accuracy")
    right.set_ylabel("accuracy (%)")
    if all(math.isnan(value) for value in accuracy):
        right.text(0.5, 0.5, "no validation split", ha="center", va="center", transform=right.transAxes)
    else:
        best = int(np.nanargmax(accuracy))
        right.annotate(
            f"{accuracy[best]:.2f} %",
            (epochs[best], accuracy[best]),
            textcoords="offset points",
            xytext=(0, -16),
            ha="center",
            fontsize=9,
        )
    for ax in (left, right):
        ax.set_xlabel("epoch")
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
    figure.suptitle(title, fontsize=13)
    return figure


def confusion_matrix(matrix, title: str = "Confusion matrix (test set)") -> Figure:
    """Counts of true class (rows) against predicted class (columns), each cell written out.

    The colour is log-scaled so the few off-diagonal errors stand out next to ~1,000 correct per class.
    """
    matrix = _array(matrix).astype(int)
    total, correct = int(matrix.sum()), int(np.trace(matrix))
    figure = Figure(figsize=(8, 7), layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(np.maximum(matrix, 0.5), cmap="Blues", norm=LogNorm(vmin=0.5, vmax=max(matrix.max(), 1)))
    figure.colorbar(image, ax=ax, label="number of images (log scale)", shrink=0.8)
    threshold = math.sqrt(max(matrix.max(), 1))  # the middle of the log colour scale
    for (row, col), count in np.ndenumerate(matrix):
        if count:
            ax.text(
                col,
                row,
                str(count),
                ha="center",
                va="center",
                fontsize=9,
                color="white" if count > threshold else "black",
            )
    ticks = np.arange(len(matrix))
    ax.set_xticks(ticks, CLASS_NAMES[: len(matrix)])
    ax.set_yticks(ticks, CLASS_NAMES[: len(matrix)])
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    accuracy = correct / total if total else math.nan
    ax.set_title(f"{title}\n{correct:,} of {total:,} correct ({accuracy:.2%})")
    return figure


def tuning_results(
    groups: Mapping[str, Sequence[tuple[str, float]]], title: str = "Validation accuracy while tuning"
) -> Figure:
    """One bar panel per varied setting: ``groups[setting] = [(value label, validation accuracy 0-1), ...]``."""
    figure = Figure(figsize=(4 * max(len(groups), 1), 4), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, max(len(groups), 1), sharey=True, squeeze=False).ravel())
    accuracies = [100 * accuracy for runs in groups.values() for _, accuracy in runs] or [90.0]
    for i, (ax, (setting, runs)) in enumerate(zip(axes, groups.items())):
        names = [name for name, _ in runs]
        values = [100 * accuracy for _, accuracy in runs]
        bars = ax.bar(names, values, color=COLOURS[i % len(COLOURS)])
        ax.bar_label(bars, fmt="%.2f", fontsize=9)
        ax.set_xlabel(setting)
        ax.set_title(f"varying {setting}")
        ax.grid(axis="y", alpha=0.3)
        ax.tick_params(axis="x", labelrotation=20)
    axes[0].set_ylabel("validation accuracy (%)")
    # Zoom on the range the runs span: they differ by tenths of a percent, invisible on a 0-100 axis.
    axes[0].set_ylim(max(0.0, min(accuracies) - 1.0), min(100.0, max(accuracies) + 0.5))
    figure.suptitle(title, fontsize=13)
    return figure


def accuracy_against_lr(
    completed: Mapping[str, Sequence[tuple[float, float]]],
    pruned: Mapping[str, Sequence[tuple[float, float]]] | None = None,
    title: str = "Accuracy against learning rate",
) -> Figure:
    """Validation accuracy (0-1) against the peak learning rate (log scale), one colour per group (an optimiser:
    their ranges differ): ``completed[group] = [(lr, accuracy), ...]`` filled, ``pruned`` runs hollow."""
    pruned = pruned or {}
    figure = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = figure.subplots()
    for index, group in enumerate(dict.fromkeys([*completed, *pruned])):
        colour = COLOURS[index % len(COLOURS)]
        for state, points, filled in (("complete", completed, True), ("pruned", pruned, False)):
            if points.get(group):
                lrs, accuracies = zip(*points[group])
                ax.scatter(
                    lrs,
                    accuracies,
                    s=28,
                    label=f"{group} ({state})",
                    edgecolors=colour,
                    facecolors=colour if filled else "none",
                )
    ax.set_xscale("log")
    ax.set_xlabel("peak learning rate")
    ax.set_ylabel("validation accuracy")
    ax.set_title(title)
    if ax.collections:  # no runs yet: no legend (matplotlib would warn of one without entries)
        ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return figure


def save_figure(figure: Figure, path, dpi: int = 100) -> None:
    figure.savefig(path, dpi=dpi)
