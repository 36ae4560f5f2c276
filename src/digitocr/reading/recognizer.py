"""``Recognizer``: read the digits in a picture with a trained model.

PLACEHOLDER: this first version only resizes the whole picture to one 28x28 digit. The MNIST-style
normalisation and segmentation of whole numbers replace it (see the real-pictures issue); the public
shape below (Recognizer.read -> ReadResult with DigitReading items, to_dict()) is the contract.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitocr.config import DEFAULT_MODEL_PATH
from digitocr.errors import ImageError


@dataclass
class DigitReading:
    digit: int
    confidence: float  # softmax probability of ``digit``
    box: tuple[int, int, int, int]  # x, y, w, h in the input picture's pixels
    top3: list[tuple[int, float]]  # best three (digit, probability), best first
    image: np.ndarray = field(repr=False, default=None)  # (28, 28) float32 in [0, 1]: what the model saw

    def to_dict(self) -> dict:
        return {"digit": self.digit, "confidence": self.confidence, "box": list(self.box),
                "top3": [{"digit": d, "confidence": p} for d, p in self.top3]}


@dataclass
class ReadResult:
    text: str  # the digits left to right; "" when none were found
    digits: list[DigitReading]

    def to_dict(self) -> dict:
        return {"text": self.text, "digits": [digit.to_dict() for digit in self.digits]}


class Recognizer:
    def __init__(self, model_path: str | os.PathLike | None = None, device: str | None = None):
        from digitocr.modelfile import load_model

        self.model_path = Path(model_path or DEFAULT_MODEL_PATH)
        self.device = device or "cpu"
        self.model = load_model(self.model_path, device=self.device)

    def read(self, image) -> ReadResult:
        import torch
        from PIL import Image

        picture = _open(image).convert("L").resize((28, 28), Image.BILINEAR)
        pixels = np.asarray(picture, dtype=np.float32) / 255
        if pixels.mean() > 0.5:
            pixels = 1 - pixels
        with torch.no_grad():
            probabilities = self.model(torch.from_numpy(pixels)[None, None].to(self.device)).softmax(1)[0].cpu()
        top = probabilities.topk(3)
        top3 = [(int(d), float(p)) for p, d in zip(top.values, top.indices)]
        width, height = _open(image).size
        reading = DigitReading(top3[0][0], top3[0][1], (0, 0, width, height), top3, pixels)
        return ReadResult(text=str(reading.digit), digits=[reading])


def _open(image):
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, Image.Image):
        return image
    if isinstance(image, np.ndarray):
        return Image.fromarray(image)
    try:
        source = io.BytesIO(image) if isinstance(image, (bytes, bytearray)) else image
        picture = Image.open(source)
        picture.load()
        return picture
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise ImageError(f"cannot read the picture: {error}") from None
