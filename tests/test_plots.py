"""Plots and reports: figures drawn from the numbers they are given, valid PNG files, and the --report-dir flags."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.text import Text

from digitocr import plots, reports
from digitocr.cli import main
from digitocr.config import ModelConfig
from digitocr.data import Split
from digitocr.models import build_model

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert header[12:16] == b"IHDR"
    return struct.unpack(">II", header[16:24])


def assert_sensible_png(path) -> None:
    width, height = png_size(path)
    assert 300 <= width <= 3000 and 150 <= height <= 3000, (path.name, width, height)
    assert path.stat().st_size > 5_000, f"{path.name} is almost empty"
    from PIL import Image

    with Image.open(path) as image:
        image.verify()  # the whole file decodes, not just its header


def made_up_split(count: int = 60, seed: int = 0) -> Split:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(count, 1, 28, 28, generator=generator)
    return Split(images, torch.arange(count) % 10)


def axis_texts(figure: Figure) -> list[str]:
    return [text.get_text() for ax in figure.axes for text in ax.texts]


def test_confusion_matrix_writes_every_nonzero_count():
    matrix = np.diag([5, 7, 9, 1, 2, 3, 4, 6, 8, 10])
    matrix[3, 5] = 2
    figure = plots.confusion_matrix(matrix)
    counts = [int(text) for text in axis_texts(figure)]
    assert sorted(counts) == sorted(int(value) for value in matrix.ravel() if value)
    assert sum(counts) == matrix.sum()
    ax = figure.axes[0]
    assert ax.get_xlabel() == "predicted digit" and ax.get_ylabel() == "true digit"
    assert [label.get_text() for label in ax.get_xticklabels()] == [str(digit) for digit in range(10)]
    assert f"{np.trace(matrix)} of {matrix.sum()} correct" in ax.get_title()


def test_training_curves_plot_the_history():
    history = [{"epoch": epoch, "train_loss": 1 / epoch, "val_accuracy": 0.9 + epoch / 100} for epoch in (1, 2, 3)]
    figure = plots.training_curves(history)
    loss_line, accuracy_line = (ax.get_lines()[0] for ax in figure.axes)
    assert list(loss_line.get_ydata()) == [1.0, 0.5, 1 / 3]
    assert np.allclose(accuracy_line.get_ydata(), [91, 92, 93])
    assert all(ax.get_xlabel() == "epoch" for ax in figure.axes)
    without_validation = plots.training_curves([{"epoch": 1, "train_loss": 1.0, "val_accuracy": None}])
    assert "no validation split" in axis_texts(without_validation)


def test_class_distribution_bars_are_each_splits_shares():
    counts = {"train": [10] * 9 + [30], "val": [0] * 10, "test": [1] * 10}  # an empty split is left out
    figure = plots.class_distribution(counts)
    heights = [patch.get_height() for patch in figure.axes[0].patches]
    assert len(heights) == 20
    assert heights[:10] == pytest.approx([100 / 12] * 9 + [100 / 4])
    assert heights[10:] == pytest.approx([10] * 10)


def test_galleries_caption_each_image():
    split = made_up_split(6)
    figure = plots.mistake_gallery(split.images, [1, 2, 3, 4, 5, 6], [7, 7, 7, 7, 7, 7], [0.5] * 6, cols=4)
    titles = [ax.get_title() for ax in figure.axes if ax.get_images()]
    assert titles[0] == "true 1\npred 7 (50%)" and len(titles) == 6
    samples = plots.sample_grid(split.images, split.labels, predictions=torch.zeros(6, dtype=torch.long))
    colours = [ax.title.get_color() for ax in samples.axes if ax.get_images()]
    assert colours[0] == "black" and colours[1] == "tab:red"  # label 0 right, label 1 wrong
    assert "nothing to show" in axis_texts(plots.mistake_gallery(split.images[:0], [], [], []))


def test_the_line_gallery_shows_each_line_to_its_own_width_and_what_was_read(tmp_path):
    images = torch.rand(3, 1, 32, 120, generator=torch.Generator().manual_seed(0))
    figure = plots.line_gallery(images, torch.tensor([120, 64, 8]), ["12", "7", ""], ["12", "1", ""])
    axes = [ax for ax in figure.axes if ax.get_images()]
    assert [ax.get_images()[0].get_array().shape for ax in axes] == [(32, 120), (32, 64), (32, 8)]
    assert all(ax.get_xlim() == (0, 120) for ax in axes)  # one scale for every line
    assert [ax.get_title(loc="left") for ax in axes] == [
        "true 12   read 12",
        "true 7   read 1",
        "true (blank)   read (nothing)",
    ]
    captions = [next(text for text in ax.findobj(Text) if text.get_text().startswith("true")) for ax in axes]
    assert [caption.get_color() for caption in captions] == ["black", "tab:red", "black"]  # red: read wrong
    plots.save_figure(figure, tmp_path / "lines.png")
    assert_sensible_png(tmp_path / "lines.png")
    assert "nothing to show" in axis_texts(plots.line_gallery(images[:0], torch.tensor([]), [], []))


def test_every_figure_saves_as_png(tmp_path):
    split = made_up_split()
    figures = {
        "samples": plots.sample_grid(split.images[:16], split.labels[:16]),
        "histogram": plots.pixel_histogram(split.images),
        "means": plots.class_mean_images(reports.class_means(split)),
        "tuning": plots.tuning_results({"lr": [("0.1", 0.97), ("0.2", 0.98)], "batch": [("128", 0.975)]}),
        "lr": plots.accuracy_against_lr({"sgd": [(0.1, 0.97), (0.2, 0.98)], "adamw": []}, {"adamw": [(3e-3, 0.9)]}),
    }
    for name, figure in figures.items():
        plots.save_figure(figure, tmp_path / f"{name}.png")
        assert_sensible_png(tmp_path / f"{name}.png")


def test_accuracy_against_lr_fills_completed_runs_and_hollows_pruned_ones():
    figure = plots.accuracy_against_lr({"sgd": [(0.1, 0.97), (0.2, 0.98)]}, {"sgd": [(0.4, 0.9)], "adamw": []})
    ax = figure.axes[0]
    completed, pruned = ax.collections
    assert completed.get_offsets().tolist() == [[0.1, 0.97], [0.2, 0.98]] and completed.get_facecolors()[0][3] > 0
    assert pruned.get_offsets().tolist() == [[0.4, 0.9]] and len(pruned.get_facecolors()) == 0  # "none": hollow
    assert ax.get_xscale() == "log" and [text.get_text() for text in ax.get_legend().texts] == [
        "sgd (complete)",
        "sgd (pruned)",
    ]


def test_misclassified_puts_confident_mistakes_first():
    split = Split(torch.zeros(4, 1, 28, 28), torch.tensor([0, 1, 2, 3]))
    predictions = reports.Predictions(
        predicted=np.array([0, 5, 6, 7]), confidence=np.array([0.9, 0.6, 0.8, 0.7]), probabilities=np.zeros((4, 10))
    )
    assert reports.misclassified(split, predictions).tolist() == [2, 3, 1]
    assert reports.misclassified(split, predictions, limit=1).tolist() == [2]


def test_class_means_and_atypical_examples():
    split = made_up_split(40)
    means = reports.class_means(split)
    assert means.shape == (10, 28, 28)
    assert np.allclose(means[3], split.images[split.labels == 3][:, 0].mean(0).numpy())
    indices, looks_like = reports.atypical_examples(split, per_class=2)
    assert len(indices) == 20
    assert split.labels[indices].tolist() == [digit for digit in range(10) for _ in range(2)]
    assert all(other != label for other, label in zip(looks_like, split.labels[indices].tolist()))


def test_write_report_files_come_from_the_real_numbers(tmp_path):
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=(16,))).eval()
    test = made_up_split(50)
    history = [{"epoch": 1, "train_loss": 2.0, "val_accuracy": float("nan"), "seconds": 0.1, "lr": 0.1}]
    paths = reports.write_report(tmp_path / "report", model, test, history=history, extra={"note": "test"})
    assert set(paths) == {*reports.REPORT_FIGURES, "metrics"}
    for name in reports.REPORT_FIGURES:
        assert_sensible_png(paths[name])
    saved = json.loads(paths["metrics"].read_text())  # strict JSON: NaN was written as null
    assert saved["history"][0]["val_accuracy"] is None and saved["note"] == "test"
    assert np.array(saved["confusion_matrix"]).sum() == len(test)
    predicted = model(test.images).argmax(1)
    assert saved["test_accuracy"] == pytest.approx((predicted == test.labels).float().mean().item())
    assert sorted(saved["report_files"]) == sorted(path.name for path in paths.values())


def test_write_report_without_history_has_no_curves(tmp_path):
    model = build_model(ModelConfig(hidden=(8,))).eval()
    paths = reports.write_report(tmp_path, model, made_up_split(20))
    assert "training_curves" not in paths and not (tmp_path / "training_curves.png").exists()


@pytest.mark.slow
def test_train_and_evaluate_write_reports(tmp_path, mnist_root, trained_model_path, capsys):
    evaluate_dir = tmp_path / "evaluate"
    assert main(["evaluate", str(trained_model_path), "--report-dir", str(evaluate_dir), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    saved = json.loads((evaluate_dir / "metrics.json").read_text())
    assert np.array(saved["confusion_matrix"]).sum() == 10_000
    assert saved["test_accuracy"] == printed["test_accuracy"]
    assert saved["model_path"] == str(trained_model_path)
    # The training curves come from the history stored in the model file.
    for name in reports.REPORT_FIGURES:
        assert_sensible_png(evaluate_dir / f"{name}.png")

    train_dir = tmp_path / "train"
    assert (
        main(
            [
                "train",
                "--epochs",
                "1",
                "--hidden",
                "32",
                "--out",
                str(tmp_path / "m.pth"),
                "--quiet",
                "--report-dir",
                str(train_dir),
                "--json",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    saved = json.loads((train_dir / "metrics.json").read_text())
    assert saved["test_accuracy"] == summary["test_accuracy"]
    assert np.array(saved["confusion_matrix"]).sum() == 10_000
    assert len(saved["history"]) == 1 and saved["config"]["model"]["hidden"] == [32]
    for name in reports.REPORT_FIGURES:
        assert_sensible_png(train_dir / f"{name}.png")
