"""Accuracy of reading synthetic pictures, per category, against a naive baseline in the same run.

The pictures are built by ``digitocr.testing.pictures`` from MNIST digits of the validation split of the
training file (which the default model never trained on) and from font-rendered digits; never the test set.
Real handwriting by other writers: the 1,797 UCI digits (43 people, 8x8 scans) that scikit-learn bundles.
The naive baseline is what published demos do: resize the whole picture to 28x28, invert if it is light.

    .venv/bin/python benchmarks/reading_accuracy.py [--model FILE] [--count 300] [--seed 0] [--json OUT]

With no --model it measures the reader that ships with the package (what `digitocr predict` reads with).
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import platform
from pathlib import Path

import numpy as np
from PIL import Image

from digitocr.data import load_mnist
from digitocr.machine import cpu_name
from digitocr.reading import Recognizer
from digitocr.testing.pictures import Sample, make_samples

KINDS = {
    "mnist": "MNIST digits as 28x28 PNGs (faithfulness)",
    "uci": "other writers: UCI 8x8 scans (scikit-learn)",
    "photo": "paper photos, one MNIST digit",
    "canvas": "drawing canvases, one MNIST digit",
    "font": "paper photos, one font digit",
    "number": "numbers of 2-8 digits, exact",
    "touching": "numbers with touching digits, exact",
}


def naive_read(recognizer: Recognizer, data: bytes) -> str:
    grey = Image.open(io.BytesIO(data)).convert("L").resize((28, 28), Image.BILINEAR)
    pixels = np.asarray(grey, dtype=np.float32) / 255
    pixels = 1 - pixels if pixels.mean() > 0.5 else pixels
    return str(int(recognizer.backend.probabilities(pixels[None]).argmax()))


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model file or shipped model name (default: the shipped reader)")
    parser.add_argument("--count", type=int, default=300, help="pictures per category")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="OUT", help="also write the figures (shares, 0-1) to OUT as JSON")
    args = parser.parse_args()

    val = load_mnist(log=lambda message: None).val
    images, labels = val.images[:, 0].numpy(), val.labels.numpy()
    recognizer = Recognizer(args.model)
    print(
        f"# reading accuracy, {args.count} pictures per category, seed {args.seed}, model {describe_model(recognizer)}"
    )
    print(f"# {datetime.date.today()}, {cpu_name()} ({platform.machine()}), {os.cpu_count()} CPUs")
    print(f'| {"category":45s} | naive baseline | digitocr | rejected (text "") |')
    print(f"|{'-' * 47}|---------------:|---------:|-------------------:|")
    figures: dict[str, dict[str, float]] = {"digitocr": {}, "naive_baseline": {}, "rejected": {}}
    for offset, (kind, title) in enumerate(KINDS.items()):
        if kind == "mnist":  # as they are: the pipeline should read them as well as the model does directly
            picked = np.random.default_rng(args.seed).choice(len(images), args.count, replace=False)
            samples = [Sample(png(images[i]), str(labels[i]), kind) for i in picked]
        elif kind == "uci":  # real handwriting by 43 people MNIST never saw, bundled with scikit-learn: all 1,797
            from sklearn.datasets import load_digits

            uci = load_digits()
            samples = [Sample(png(image / 16), str(label), kind) for image, label in zip(uci.images, uci.target)]
        else:
            samples = make_samples(kind, args.count, images, labels, seed=args.seed * 100 + offset - 2)
        ours = [result.text for result in recognizer.read_many([sample.data for sample in samples])]
        naive = [naive_read(recognizer, sample.data) for sample in samples]
        correct = np.mean([text == sample.text for text, sample in zip(ours, samples)])
        baseline = np.mean([text == sample.text for text, sample in zip(naive, samples)])
        empty = np.mean([text == "" for text in ours])
        print(f"| {title:45s} | {baseline:14.1%} | {correct:8.1%} | {empty:18.1%} |", flush=True)
        for table, value in zip(figures.values(), (correct, baseline, empty)):
            table[kind] = float(value)
    if args.json:
        described = {"model": describe_model(recognizer), "count": args.count, "seed": args.seed}
        Path(args.json).write_text(json.dumps({**described, **figures}, indent=2) + "\n")


if __name__ == "__main__":
    main()
