"""``Recognizer``: read the digits in a picture with a trained model.

``prepare_many`` turns pictures into the 28x28 digit images the model sees (the stages in ``stages.py`` and
``segment.py``, run on stacks of same-sized pictures at once); ``Recognizer`` classifies all digits of all
pictures in one batched model call and drops what is not a digit. A single digit is a number of length one,
and a single picture a batch of one: one code path.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitocr.config import DEFAULT_MODEL_PATH, ReadingConfig
from digitocr.reading import stages
from digitocr.reading.backends import make_backend
from digitocr.errors import ConfigError, ImageError
from digitocr.reading.images import load_working_many, open_picture
from digitocr.reading.segment import CutLattice, digit_choices, find_components

STACK_PIXELS = 4_000_000  # pixels of working images processed as one stack (about 16 MB per float array)


@dataclass
class DigitReading:
    digit: int
    confidence: float  # softmax probability of ``digit``
    box: tuple[int, int, int, int]  # x, y, w, h in the input picture's pixels
    top3: list[tuple[int, float]]  # best three (digit, probability), best first
    image: np.ndarray = field(repr=False, default=None)  # (28, 28) float32 in [0, 1]: what the model saw
    probabilities: np.ndarray = field(repr=False, default=None)  # (10,) all class probabilities, digit 0 first

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
    plausible: bool = True  # could be an MNIST digit at all (``plausible_digits``), before asking the model
    stroke: float = 0.0  # mean stroke width in the 28x28 image (pixels)
    # Where the same ink may be cut into touching digits (its cut columns and digit counts), and the candidate
    # between cut columns i and j: a reading of the piece as several digits is a path 0 -> lattice.last.
    lattice: CutLattice | None = None
    parts: dict[tuple[int, int], Candidate] = field(default_factory=dict)
    probabilities: np.ndarray | None = None  # (10,) from the model, once read
    top3: list[tuple[int, float]] = field(default_factory=list)  # best three (digit, probability), once read


def prepare(source, config: ReadingConfig = ReadingConfig()) -> list[Candidate]:
    """A picture -> its digit candidates, left to right (no model involved). Raises ImageError."""
    return prepare_many([source], config)[0]


def prepare_many(sources, config: ReadingConfig = ReadingConfig()) -> list[list[Candidate]]:
    """Pictures -> the digit candidates of each. Raises ImageError for the first that cannot be read.

    Pictures whose working images have the same size go through the stages together as one stack, in
    chunks of about ``STACK_PIXELS`` pixels, so many small pictures cost little more than one.
    """
    loaded = load_working_many(sources, config)
    by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, (grey, _) in enumerate(loaded):
        by_size[grey.shape].append(index)
    found: list[list[Candidate]] = [[] for _ in loaded]
    for (height, width), indices in by_size.items():
        chunk = max(1, STACK_PIXELS // (height * width))
        for start in range(0, len(indices), chunk):
            part = indices[start:start + chunk]
            mappings = [loaded[i][1] for i in part]
            for index, candidates in zip(part, candidates_in(np.stack([loaded[i][0] for i in part]), mappings, config)):
                found[index] = candidates
    return found


def ink_of(grey: np.ndarray, config: ReadingConfig = ReadingConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Working grey images (..., H, W) -> (ink contrast, ink mask): lighting removed, polarity fixed, thresholded.

    The mask comes from the denoised picture; the contrast the digits are cut from is not blurred, so
    strokes keep MNIST's sharpness. A picture with more ink than ``max_ink_fraction`` is a photo or a
    texture rather than written digits: its mask is empty.
    """
    clean = stages.remove_noise(grey)
    paper = stages.estimate_paper(clean)
    ordered = stages.sorted_sample(clean - paper)  # one sort for the polarity's and the threshold's statistics
    dark_ink = stages.ink_is_dark(clean, paper, ordered)
    clean_contrast = stages.ink_contrast(clean, paper, dark_ink)
    threshold, _ = stages.ink_threshold(clean_contrast, config.min_contrast,
                                        stages.contrast_sample(ordered, dark_ink))
    mask = clean_contrast > np.asarray(threshold)[..., None, None]
    mask &= (mask.mean((-2, -1)) <= config.max_ink_fraction)[..., None, None]
    return stages.ink_contrast(grey, paper, dark_ink), mask


def candidates_in(greys: np.ndarray, mappings: list[tuple[float, float, int]],
                  config: ReadingConfig) -> list[list[Candidate]]:
    """A stack of working images (N, H, W) and how each maps to its input's pixels -> each one's candidates."""
    contrast, mask = ink_of(greys, config)
    choices = digit_choices(find_components(mask))
    # Every piece of every picture, wholes and the parts they may be cut into, is normalised in one batch.
    pieces = [(picture, piece) for picture, found in enumerate(choices) for whole, lattice in found
              for piece in [whole, *(lattice.parts.values() if lattice else ())]]
    images = stages.normalise_digits([(contrast[picture, y0:y1, x0:x1], piece.mask)
                                      for picture, piece in pieces for x0, y0, x1, y1 in [piece.box]])
    plausible, strokes = plausible_digits(images, config)
    made = iter(Candidate(_input_box(piece.box, mappings[picture]), image, bool(ok), float(stroke))
                for (picture, piece), image, ok, stroke in zip(pieces, images, plausible, strokes))
    found_per_picture = []
    for found in choices:
        candidates = []
        for _, lattice in found:
            candidates.append(next(made))
            if lattice:
                candidates[-1].lattice, candidates[-1].parts = lattice, {key: next(made) for key in lattice.parts}
        found_per_picture.append(candidates)
    return found_per_picture


def _input_box(box: tuple[int, int, int, int], mapping: tuple[float, float, int]) -> tuple[int, int, int, int]:
    """A working-image box (x0, y0, x1, y1) -> x, y, w, h in the input picture's pixels (``load_working``)."""
    x0, y0, x1, y1 = box
    sx, sy, margin = mapping
    x, y = max(0, round((x0 - margin) * sx)), max(0, round((y0 - margin) * sy))
    return x, y, max(1, round((x1 - x0) * sx)), max(1, round((y1 - y0) * sy))


def plausible_digits(images: np.ndarray, config: ReadingConfig) -> tuple[np.ndarray, np.ndarray]:
    """Whether each normalised 28x28 image could be an MNIST digit at all, before asking the model; and its
    stroke width.

    A filled blob (a dot, a smudge, a horse) has more ink and far thicker strokes than any MNIST digit,
    a wisp less ink, and a dash or a ruled line is too flat: MNIST digits fill the 20-pixel box in height
    unless they are wider than tall.
    """
    low, high = config.ink_mass_range
    mass = images.mean((1, 2))
    rows = images.max(2) > 0.1
    height = rows.shape[1] - np.argmax(rows[:, ::-1], axis=1) - np.argmax(rows, axis=1)
    strokes = stages.stroke_width(images > 0.5)  # (M,)
    plausible = (low <= mass) & (mass <= high) & rows.any(1) & (height >= config.min_height)
    return plausible & (strokes <= config.max_stroke), strokes


class Recognizer:
    """Reads digits in pictures with one trained model.

    ``workers`` > 1 reads large batches (``read_many``, ``read_each``) in that many processes: this one and
    ``workers - 1`` helpers with one thread each (``parallel.py``). The helpers start with the first such batch
    and stop with ``close()`` or when the recognizer is garbage-collected. Give this process one thread too
    (``parallel.limit_threads``) so the processes do not fight over the cores. Workers are for CPUs: on a GPU
    the model is already parallel.
    """

    def __init__(self, model_path: str | os.PathLike | None = None, device: str | None = None,
                 backend: str = "torch", config: ReadingConfig | None = None, workers: int = 1):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if workers > 1 and device not in (None, "cpu"):
            raise ConfigError(f"workers read on CPU cores; with device {device!r} leave workers at 1")
        self.model_path = Path(model_path or DEFAULT_MODEL_PATH)
        self.config = config or ReadingConfig()
        self.backend = make_backend(self.model_path, device, backend)
        self.workers, self._device, self._backend_name = workers, device, backend
        self._pool = None

    def close(self) -> None:
        """Stop the worker processes, if any were started (reading again starts them anew)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> Recognizer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _in_parallel(self, count: int):
        """The helper processes when this batch is worth splitting, else None."""
        if self.workers < 2:
            return None
        from digitocr.reading.parallel import MIN_SHARE, ReadingPool

        if count < 2 * MIN_SHARE:
            return None
        if self._pool is None or self._pool.closed:  # closed: after an interruption or a dead helper
            self._pool = ReadingPool(self.workers, self.model_path, self._device, self._backend_name, self.config)
        return self._pool

    def read(self, image) -> ReadResult:
        """A path, bytes, a PIL image or a numpy array -> the digits in it. Raises ImageError."""
        return self.read_many([image])[0]

    def read_each(self, images) -> list[ReadResult | ImageError]:
        """Like ``read_many``, but a picture that cannot be read gives its ImageError in its place instead of
        failing the others (each is opened and checked first, then the good ones are read together)."""
        images = list(images)
        pool = self._in_parallel(len(images))
        if pool is not None:
            return pool.read("read_each", images, self._read_each_here)
        return self._read_each_here(images)

    def _read_each_here(self, images: list) -> list[ReadResult | ImageError]:
        opened = []
        for image in images:
            try:
                opened.append(open_picture(image, self.config))
            except ImageError as error:
                opened.append(error)
        good = [index for index, picture in enumerate(opened) if not isinstance(picture, ImageError)]
        for index, result in zip(good, self._read_many_here([opened[i] for i in good])):
            opened[index] = result
        return opened

    def read_many(self, images) -> list[ReadResult]:
        """Several pictures, with one model call for all their digits (the fast way to read many).

        Raises ImageError for the first picture that cannot be read (``read_each`` reads the others)."""
        images = list(images)
        pool = self._in_parallel(len(images))
        if pool is not None:
            return pool.read("read_many", images, self._read_many_here)
        return self._read_many_here(images)

    def _read_many_here(self, images: list) -> list[ReadResult]:
        found = prepare_many(images, self.config)
        everything = [c for candidates in found for whole in candidates for c in [whole, *whole.parts.values()]]
        if everything:
            probabilities = self.backend.probabilities(np.stack([c.image for c in everything]))
            best = np.argsort(-probabilities, axis=1, kind="stable")[:, :3]
            best_probabilities = np.take_along_axis(probabilities, best, axis=1)
            for candidate, row, digits, chances in zip(everything, probabilities, best.tolist(),
                                                       best_probabilities.tolist()):
                candidate.probabilities, candidate.top3 = row, list(zip(digits, chances))
        return [self._result(candidates) for candidates in found]

    def _result(self, candidates: list[Candidate]) -> ReadResult:
        """Keep what looks like a digit and is read surely; an unsure one is kept too when at least two sure
        digits stand beside it, as a digit of a number (dropping it would misread the number anyway)."""
        chosen = [c for whole in candidates for c in self._choose(whole) if c.plausible]
        sure = [c.top3[0][1] >= self.config.min_confidence for c in chosen]
        in_a_number = sum(sure) >= 2
        digits = [DigitReading(c.top3[0][0], c.top3[0][1], c.box, c.top3, c.image, c.probabilities)
                  for c, is_sure in zip(chosen, sure) if is_sure or in_a_number]
        return ReadResult("".join(str(d.digit) for d in digits), digits)

    def _choose(self, whole: Candidate) -> list[Candidate]:
        """The whole piece or one way of cutting it: the one the model reads most surely (geometric mean of
        the confidences). A whole wider than twice its height (under 0.5 % of MNIST digits are) is always
        cut; one with strokes thicker than any digit's is dropped, cuts and all."""
        if whole.stroke > self.config.max_stroke:
            return []  # a blob: cutting it would only make smaller blobs
        if not whole.parts:
            return [whole]
        best, best_score = [whole], self._score([whole])
        if whole.box[2] > 2 * whole.box[3]:
            best, best_score = [], -1.0
        # Cut a digit-shaped piece only where the evidence is clear; one wider than 1.5x its height (0.5 % of
        # MNIST digits are) is more likely two touching digits, and the better reading wins outright.
        margin = 0.15 if whole.box[2] <= 1.5 * whole.box[3] else 0.0
        for parts, score in self._cuttings(whole):
            if score - margin > best_score:
                best, best_score = parts, score - margin
        return best

    def _cuttings(self, whole: Candidate) -> list[tuple[list[Candidate], float]]:
        """For each number of digits k >= 2: the cutting of the piece into k parts the model reads most surely
        (dynamic programming over the cut columns: the best sum of log confidences reaching each column)."""
        reach: dict[int, tuple[float, list[Candidate]]] = {0: (0.0, [])}  # column -> best with k parts so far
        found = []
        fewest, most = whole.lattice.counts
        for count in range(1, min(whole.lattice.last, most) + 1):
            following: dict[int, tuple[float, list[Candidate]]] = {}
            for (start, end), part in whole.parts.items():
                if start in reach and part.plausible:
                    total = reach[start][0] + float(np.log(part.top3[0][1]))
                    if end not in following or total > following[end][0]:
                        following[end] = (total, reach[start][1] + [part])
            if not following:
                break
            reach = following
            if count >= fewest and whole.lattice.last in reach:
                total, parts = reach[whole.lattice.last]
                found.append((parts, float(np.exp(total / count))))
        return found

    def _score(self, candidates: list[Candidate]) -> float:
        if not all(c.plausible for c in candidates):
            return 0.0
        return float(np.exp(np.mean([np.log(c.top3[0][1]) for c in candidates])))
