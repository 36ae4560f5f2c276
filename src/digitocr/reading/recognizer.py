"""``Recognizer``: read the digits in a picture with a trained model.

``prepare`` turns one picture into the 28x28 digit images the model sees (the stages in ``stages.py`` and
``segment.py``); ``Recognizer`` classifies all digits of all pictures in one batched model call and drops
what is not a digit. A single digit is a number of length one: one code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitocr.config import DEFAULT_MODEL_PATH, ReadingConfig
from digitocr.reading import stages
from digitocr.reading.backends import make_backend
from digitocr.reading.images import open_picture, to_working
from digitocr.reading.segment import find_digit_choices


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


@dataclass
class Candidate:
    """Something that may be a digit: where it is in the input picture and its normalised 28x28 image."""

    box: tuple[int, int, int, int]  # x, y, w, h in the input picture's pixels
    image: np.ndarray  # (28, 28) float32 in [0, 1]
    cuts: list[list[Candidate]] = field(default_factory=list)  # ways to cut the same ink into touching digits
    probabilities: np.ndarray | None = None  # (10,) from the model, once read


def prepare(source, config: ReadingConfig = ReadingConfig()) -> list[Candidate]:
    """A picture -> its digit candidates, left to right (no model involved). Raises ImageError."""
    picture = open_picture(source, config)
    grey = to_working(picture, config)
    input_width, input_height = shown_size(picture)
    return candidates_in(grey, (input_width / grey.shape[1], input_height / grey.shape[0]), config)


def shown_size(picture) -> tuple[int, int]:
    """The picture's size as shown, i.e. after its EXIF rotation (boxes are given in these pixels)."""
    width, height = picture.size
    orientation = picture.getexif().get(0x0112, 1)
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def ink_of(grey: np.ndarray, config: ReadingConfig = ReadingConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Working grey image -> (ink contrast, ink mask): lighting removed, polarity fixed, thresholded.

    The mask comes from the denoised picture; the contrast the digits are cut from is not blurred, so
    strokes keep MNIST's sharpness.
    """
    clean = stages.remove_noise(grey)
    paper = stages.estimate_paper(clean)
    dark_ink = stages.ink_is_dark(clean, paper)
    clean_contrast = stages.ink_contrast(clean, paper, dark_ink)
    threshold, _ = stages.ink_threshold(clean_contrast, config.min_contrast)
    return stages.ink_contrast(grey, paper, dark_ink), clean_contrast > threshold


def candidates_in(grey: np.ndarray, scale: tuple[float, float], config: ReadingConfig) -> list[Candidate]:
    contrast, mask = ink_of(grey, config)
    if not mask.any() or mask.mean() > config.max_ink_fraction:
        return []  # no ink, or so much that this is a photo or texture rather than written digits

    def candidate(piece) -> Candidate:
        x0, y0, x1, y1 = piece.box
        image = stages.normalise_digit(stages.crop_digit(contrast, piece.mask, piece.box), piece.mask)
        return Candidate((round(x0 * scale[0]), round(y0 * scale[1]), max(1, round((x1 - x0) * scale[0])),
                          max(1, round((y1 - y0) * scale[1]))), image)

    candidates = []
    for whole, ways in find_digit_choices(mask):
        candidates.append(candidate(whole))
        candidates[-1].cuts = [[candidate(part) for part in parts] for parts in ways]
    return candidates


def looks_like_a_digit(image: np.ndarray, config: ReadingConfig) -> bool:
    """Whether a normalised 28x28 image could be an MNIST digit at all, before asking the model.

    A filled blob (a dot, a smudge, a horse) has more ink and far thicker strokes than any MNIST digit,
    a wisp less ink, and a dash or a ruled line is too flat: MNIST digits fill the 20-pixel box in height
    unless they are wider than tall.
    """
    low, high = config.ink_mass_range
    if not low <= float(image.mean()) <= high:
        return False
    rows = np.flatnonzero(image.max(1) > 0.1)
    if rows.size == 0 or rows[-1] - rows[0] + 1 < config.min_height:
        return False
    return stages.stroke_width(image > 0.5) <= config.max_stroke


class Recognizer:
    def __init__(self, model_path: str | os.PathLike | None = None, device: str | None = None,
                 backend: str = "torch", config: ReadingConfig | None = None):
        self.model_path = Path(model_path or DEFAULT_MODEL_PATH)
        self.config = config or ReadingConfig()
        self.backend = make_backend(self.model_path, device, backend)

    def read(self, image) -> ReadResult:
        """A path, bytes, a PIL image or a numpy array -> the digits in it. Raises ImageError."""
        return self.read_many([image])[0]

    def read_many(self, images) -> list[ReadResult]:
        """Several pictures, with one model call for all their digits (the fast way to read many)."""
        found = [prepare(image, self.config) for image in images]
        everything = [c for candidates in found for whole in candidates
                      for c in [whole, *(part for parts in whole.cuts for part in parts)]]
        if everything:
            probabilities = self.backend.probabilities(np.stack([c.image for c in everything]))
            for candidate, row in zip(everything, probabilities):
                candidate.probabilities = row
        return [self._result(candidates) for candidates in found]

    def _result(self, candidates: list[Candidate]) -> ReadResult:
        """Keep what looks like a digit and is read surely; an unsure one is kept too when at least two sure
        digits stand beside it, as a digit of a number (dropping it would misread the number anyway)."""
        chosen = [c for whole in candidates for c in self._choose(whole) if looks_like_a_digit(c.image, self.config)]
        sure = [c.probabilities.max() >= self.config.min_confidence for c in chosen]
        in_a_number = sum(sure) >= 2
        digits = []
        for candidate, is_sure in zip(chosen, sure):
            if is_sure or in_a_number:
                row = candidate.probabilities
                top3 = [(int(d), float(row[d])) for d in np.argsort(row)[::-1][:3]]
                digits.append(DigitReading(top3[0][0], top3[0][1], candidate.box, top3, candidate.image))
        return ReadResult("".join(str(d.digit) for d in digits), digits)

    def _choose(self, whole: Candidate) -> list[Candidate]:
        """The whole piece or one way of cutting it: the one the model reads most surely (geometric mean of
        the confidences; a cut must win by 0.15). A whole wider than twice its height (under 0.5 % of MNIST
        digits are) is always cut; one with strokes thicker than any digit's is dropped, cuts and all."""
        if stages.stroke_width(whole.image > 0.5) > self.config.max_stroke:
            return []  # a blob: cutting it would only make smaller blobs
        best, best_score = [whole], self._score([whole])
        if whole.cuts and whole.box[2] > 2 * whole.box[3]:
            best, best_score = [], -1.0
        for parts in whole.cuts:
            score = self._score(parts) - 0.15  # cut only where the evidence is clear
            if score > best_score:
                best, best_score = parts, score
        return best

    def _score(self, candidates: list[Candidate]) -> float:
        if not all(looks_like_a_digit(c.image, self.config) for c in candidates):
            return 0.0
        return float(np.exp(np.mean([np.log(c.probabilities.max()) for c in candidates])))
