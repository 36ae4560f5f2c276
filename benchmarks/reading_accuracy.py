"""Accuracy of reading synthetic pictures, per category, against a naive baseline and a target, in one run.

The pictures are built by ``digitocr.testing.pictures``: the reader's first categories (photo to touching) from
MNIST digits of the validation split of the training file (which no model trained on), the line reader's
categories (comb to edge, issue 16) from digits of the MNIST test split (which no training or tuning sees), and
from font-rendered digits. Real handwriting by other writers: the 1,797 UCI digits (43 people, 8x8 scans) that
scikit-learn bundles. The naive baseline is what published demos do: resize the whole picture to 28x28, invert
if it is light. Each category has a target (exact readings, issue 16): the last column says whether it is met.

    .venv/bin/python benchmarks/reading_accuracy.py [--model FILE] [--count 300] [--seed 0] [--kinds a,b]
                                                    [--json OUT] [--readings OUT] [--validation]

``--readings OUT`` writes what each picture shows and what was read, so that two readers (or two trainings) can be
compared picture by picture on the same pictures: ``benchmarks/paired.py A.json B.json``.

``--validation`` draws every category from the validation digits (the UCI scans left out): the pictures to choose
a reader's settings on without looking at the test digits the line reader's categories are measured on.

With no --model it measures the reader that ships with the package (what `digitocr predict` reads with).
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from digitocr import ctc
from digitocr.config import IMAGE_SIZE, LINE_HEIGHT, LINE_STRIDE
from digitocr.data import load_mnist
from digitocr.errors import DigitOCRError
from digitocr.machine import cpu_name
from digitocr.reading import Recognizer
from digitocr.testing.pictures import Sample, make_samples


@dataclass(frozen=True)
class Category:
    title: str
    target: float  # share of pictures read exactly that the reader should reach (issue 16)
    split: str = "val"  # the MNIST split its glyphs come from: "val" (the first categories) or "test"


# In this order: a category's seed is its place here, so one added at the end leaves the others' pictures as
# they were, and --kinds picks pictures identical to a full run's.
KINDS = {
    "mnist": Category("MNIST digits as 28x28 PNGs (faithfulness)", 0.993),
    "uci": Category("other writers: UCI 8x8 scans (scikit-learn)", 0.96),
    "photo": Category("paper photos, one MNIST digit", 0.99),
    "canvas": Category("drawing canvases, one MNIST digit", 0.99),
    "font": Category("paper photos, one font digit", 0.99),
    "number": Category("numbers of 2-8 digits, exact", 0.98),
    "touching": Category("numbers with touching digits, exact", 0.95),
    "comb": Category("numbers of 3-8 digits in a form's boxes, exact", 0.97, "test"),
    "ruled": Category("numbers on ruled notebook paper, exact", 0.97, "test"),
    "colour": Category("colour photos, perspective and shadow, exact", 0.98, "test"),
    "small": Category("a number small in a 1200x900 photo, exact", 0.98, "test"),
    "lines": Category("2-3 lines of numbers, exact", 0.97, "test"),
    "tight-dark": Category("tight crops, enlarged small scans, dark on light", 0.97, "test"),
    "tight-light": Category("tight crops, enlarged small scans, light on dark", 0.97, "test"),
    "edge": Category('no digits (blank, noise, empty forms): text ""', 1.0, "test"),
}


def naive_read(recognizer: Recognizer, data: bytes) -> str:
    """Resize the whole picture to the model's input (28x28, or 32 rows for a line model), invert it if light."""
    grey = Image.open(io.BytesIO(data)).convert("L")
    if recognizer.backend.reads_lines:
        width = max(1, -(-round(LINE_HEIGHT * grey.width / grey.height) // LINE_STRIDE)) * LINE_STRIDE
        size = (width, LINE_HEIGHT)
    else:
        size = (IMAGE_SIZE, IMAGE_SIZE)
    pixels = np.asarray(grey.resize(size, Image.BILINEAR), dtype=np.float32) / 255
    pixels = 1 - pixels if pixels.mean() > 0.5 else pixels
    if recognizer.backend.reads_lines:
        return ctc.texts(recognizer.backend.columns(pixels[None]))[0]
    return str(int(recognizer.backend.probabilities(pixels[None]).argmax()))


def misread_by_variant(samples: list[Sample], texts: list[str]) -> dict[str, dict[str, int]]:
    """Per variant of the samples' generator (an empty picture's blank, noise, texture, ...): pictures, misread."""
    counts: dict[str, dict[str, int]] = {}
    for sample, text in zip(samples, texts):
        tally = counts.setdefault(sample.variant, {"pictures": 0, "misread": 0})
        tally["pictures"] += 1
        tally["misread"] += text != sample.text
    return dict(sorted(counts.items()))


def describe_model(recognizer: Recognizer) -> str:
    """The model the figures belong to: its path, architecture and the MNIST test accuracy recorded in its file."""
    model_file = getattr(recognizer.backend, "model_file", None)
    if model_file is None:
        return str(recognizer.model_path)
    model = model_file.config.model
    widths = model.hidden if model.name == "mlp" else model.channels
    accuracy = model_file.metadata.get("metrics", {}).get("test_accuracy")
    recorded = f", {accuracy:.2%} on the MNIST test set" if accuracy is not None else ""
    return f"{recognizer.model_path} ({model.name} {'-'.join(map(str, widths))}{recorded})"


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((image * 255).round().astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def samples_of(kind: str, count: int, seed: int, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[Sample]:
    """The pictures of one category: ``count`` of them (UCI: all 1,797), the same for the same seed."""
    images, labels = splits[KINDS[kind].split]
    if kind == "mnist":  # as they are: the pipeline should read them as well as the model does directly
        picked = np.random.default_rng(seed).choice(len(images), count, replace=False)
        return [Sample(png(images[i]), str(labels[i]), kind) for i in picked]
    if kind == "uci":  # real handwriting by 43 people MNIST never saw, bundled with scikit-learn: all 1,797
        from sklearn.datasets import load_digits

        uci = load_digits()
        return [Sample(png(image / 16), str(label), kind) for image, label in zip(uci.images, uci.target)]
    return make_samples(kind, count, images, labels, seed=seed * 100 + list(KINDS).index(kind) - 2)


def parse_kinds(text: str | None) -> list[str]:
    """--kinds a,b,c: those categories, in KINDS' order; none given: all."""
    if text is None:
        return list(KINDS)
    asked = [kind.strip() for kind in text.split(",") if kind.strip()]
    unknown = [kind for kind in asked if kind not in KINDS]
    if unknown or not asked:
        raise SystemExit(f"unknown categories {', '.join(unknown) or '(none given)'}: choose from {', '.join(KINDS)}")
    return [kind for kind in KINDS if kind in asked]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model file or shipped model name (default: the shipped reader)")
    parser.add_argument("--count", type=int, default=300, help="pictures per category")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", metavar="A,B", help=f"only these categories (of {', '.join(KINDS)})")
    parser.add_argument("--json", metavar="OUT", help="also write the figures (shares, 0-1) to OUT as JSON")
    parser.add_argument(
        "--readings", metavar="OUT", help="also write each picture's text and reading to OUT (for benchmarks/paired.py)"
    )
    parser.add_argument(
        "--validation", action="store_true", help="every category from the validation digits (for tuning), no UCI"
    )
    args = parser.parse_args()
    for option, out in (("--json", args.json), ("--readings", args.readings)):
        if out and not Path(out).resolve().parent.is_dir():
            parser.error(f"{option} {out}: no such folder to write to")  # before the run, not after it
    kinds = parse_kinds(args.kinds)
    if args.validation:
        kinds = [kind for kind in kinds if kind != "uci"]  # other writers: a measure, never tuned on

    data = load_mnist(log=lambda message: None)
    splits = {
        name: (split.images[:, 0].numpy(), split.labels.numpy())
        for name, split in (("val", data.val), ("test", data.test))
    }
    if args.validation:
        splits["test"] = splits["val"]
    recognizer = Recognizer(args.model)
    print(
        f"# reading accuracy, {args.count} pictures per category, seed {args.seed}, model {describe_model(recognizer)}"
        + (", every category from the validation digits" if args.validation else "")
    )
    print(f"# {datetime.date.today()}, {cpu_name()} ({platform.machine()}), {os.cpu_count()} CPUs")
    print(f'| {"category":50s} | naive baseline | digitocr | rejected (text "") | target | met |')
    print(f"|{'-' * 52}|---------------:|---------:|-------------------:|-------:|:---:|")
    figures: dict[str, dict[str, float]] = {"digitocr": {}, "naive_baseline": {}, "rejected": {}}
    by_variant: dict[str, dict[str, dict[str, int]]] = {}  # categories of several variants: misread of each
    readings: dict[str, list[dict[str, str]]] = {}
    for kind in kinds:
        category = KINDS[kind]
        samples = samples_of(kind, args.count, args.seed, splits)
        ours = [result.text for result in recognizer.read_many([sample.data for sample in samples])]
        naive = [naive_read(recognizer, sample.data) for sample in samples]
        correct = np.mean([text == sample.text for text, sample in zip(ours, samples)])
        baseline = np.mean([text == sample.text for text, sample in zip(naive, samples)])
        empty = np.mean([text == "" for text in ours])
        met = "yes" if correct >= category.target else "no"
        print(
            f"| {category.title:50s} | {baseline:14.1%} | {correct:8.1%} | {empty:18.1%} | {category.target:6.1%} "
            f"| {met:3s} |",
            flush=True,
        )
        for table, value in zip(figures.values(), (correct, baseline, empty)):
            table[kind] = float(value)
        if any(sample.variant for sample in samples):
            by_variant[kind] = misread_by_variant(samples, ours)
        readings[kind] = [{"text": sample.text, "read": text} for sample, text in zip(samples, ours)]
    for kind, variants in by_variant.items():
        counts = ", ".join(f"{variant} {n['misread']}/{n['pictures']}" for variant, n in variants.items())
        print(f"# {kind}, misread by variant: {counts}")
    described = {"model": describe_model(recognizer), "count": args.count, "seed": args.seed}
    if args.readings:
        drawn = {**described, "validation": args.validation, "readings": readings}
        Path(args.readings).write_text(json.dumps(drawn) + "\n")
    if args.json:
        targets = {kind: KINDS[kind].target for kind in kinds}
        met = {kind: figures["digitocr"][kind] >= targets[kind] for kind in kinds}
        splits_used = {kind: "val" if args.validation else KINDS[kind].split for kind in kinds if kind != "uci"}
        extra = {"targets": targets, "met": met, "mnist_split": splits_used, "misread_by_variant": by_variant}
        Path(args.json).write_text(json.dumps({**described, **figures, **extra}, indent=2) + "\n")


if __name__ == "__main__":
    try:
        main()
    except DigitOCRError as error:  # a missing model file, a picture that cannot be read: one line, no traceback
        raise SystemExit(f"{Path(__file__).name}: {error}") from None
