"""Draw docs/reading_stages.png: the normalisation stages on one synthetic photo of a handwritten number.

.venv/bin/python benchmarks/reading_figure.py --model trained_model.pth [--out docs/reading_stages.png]
"""

from __future__ import annotations

import argparse
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle
from PIL import Image

from digitocr.config import ReadingConfig
from digitocr.data import load_mnist
from digitocr.reading import Recognizer, stages
from digitocr.reading.images import load_working
from digitocr.testing.pictures import make_samples


def working_box(box: tuple[int, int, int, int], mapping: tuple[float, float, int]) -> tuple[float, float, float, float]:
    """A digit's box as read (x, y, w, h in the input picture's pixels) -> x, y, w, h in the working image: the
    inverse of ``load_working``'s mapping (input x = (working x - frame) * x scale)."""
    x, y, w, h = box
    sx, sy, margin = mapping
    return x / sx + margin, y / sy + margin, w / sx, h / sy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default="reader", help="model file or shipped model name (default: the shipped reader)"
    )
    parser.add_argument("--out", default="docs/reading_stages.png")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()

    val = load_mnist(log=lambda message: None).val
    sample = make_samples("number", 1, val.images[:, 0].numpy(), val.labels.numpy(), seed=args.seed)[0]
    grey, mapping = load_working(sample.data)
    clean = stages.remove_noise(grey)
    paper = stages.estimate_paper(clean)
    dark = stages.ink_is_dark(clean, paper)
    contrast = stages.ink_contrast(clean, paper, dark)
    threshold, _ = stages.ink_threshold(contrast, ReadingConfig().min_contrast)
    mask = contrast > threshold
    result = Recognizer(args.model).read(sample.data)

    panels = [
        ("1. the photo", np.asarray(Image.open(io.BytesIO(sample.data)).convert("RGB")), None),
        ("2. grey, working size, denoised", clean, "gray"),
        ("3. paper under uneven light (fitted)", paper, "gray"),
        (
            f"4. ink contrast ({'dark' if dark else 'light'} ink), lighting removed",
            contrast / max(float(contrast.max()), 1e-6),
            "magma",
        ),
        ("5. adaptive threshold + the digits read", mask, "gray"),
    ]
    figure = plt.figure(figsize=(12, 7.2))
    for index, (title, image, cmap) in enumerate(panels):
        axis = figure.add_subplot(3, 2, index + 1)
        axis.imshow(image, cmap=cmap, vmin=0 if cmap else None, vmax=1 if cmap else None)
        axis.set_title(title, fontsize=10)
        axis.axis("off")
        if index == 4:
            for reading in result.digits:  # what the Recognizer read, cuttings of touching digits included
                x, y, w, h = working_box(reading.box, mapping)
                axis.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, color="tab:orange"))
    count = max(len(result.digits), 1)
    for index, reading in enumerate(result.digits):
        axis = figure.add_axes([0.53 + index * 0.45 / count, 0.05, 0.42 / count, 0.25])
        axis.imshow(reading.image, cmap="gray", vmin=0, vmax=1)
        axis.set_title(f"{reading.digit} ({reading.confidence:.0%})", fontsize=9)
        axis.axis("off")
    figure.text(
        0.53,
        0.34,
        f"6. 28x28 digits the model saw (20x20 box, centre of mass)\nread: {result.text!r}   truth: {sample.text!r}",
        fontsize=10,
    )
    figure.savefig(args.out, dpi=80, bbox_inches="tight")
    print(f"saved {args.out}: read {result.text!r}, truth {sample.text!r}")


if __name__ == "__main__":
    main()
