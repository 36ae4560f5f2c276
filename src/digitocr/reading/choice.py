"""The model-driven choice: for each piece, read whole or cut into touching digits, whichever the model reads
most surely; then which readings are digits at all. The candidate cuts come from ``segment.cut_lattice``."""

from __future__ import annotations

import numpy as np

from digitocr.config import ReadingConfig
from digitocr.reading.candidates import Candidate
from digitocr.reading.results import DigitReading, ReadResult

# A piece wider than this many heights is always cut: under 0.5 % of MNIST digits are wider than twice their
# height, so it is touching digits, however surely the model reads it whole.
ALWAYS_CUT_ASPECT = 2.0
# Up to this width per height a piece is digit-shaped, and a cutting must beat reading it whole by WHOLE_MARGIN
# (geometric-mean confidence): cutting on weak evidence split single wide digits. Wider pieces (0.5 % of MNIST
# digits) are more likely two touching digits, and the better reading wins outright.
DIGIT_SHAPED_ASPECT = 1.5
# Measured (stop of 2026-11-26, benchmarks/reading_accuracy.py): 0.05 instead gained one touching number and
# lost four spaced ones.
WHOLE_MARGIN = 0.15
# An unsure reading is kept when at least this many sure digits stand beside it: it is a digit of a number, and
# dropping it would misread the number anyway.
SURE_DIGITS_OF_A_NUMBER = 2


def reading_of(candidates: list[Candidate], config: ReadingConfig) -> ReadResult:
    """A picture's candidates, read by the model -> its digits: what looks like a digit and is read surely
    (``config.min_confidence``), and the unsure digits of a number."""
    chosen = [c for whole in candidates for c in choose(whole, config) if c.plausible]
    sure = [c.top3[0][1] >= config.min_confidence for c in chosen]
    in_a_number = sum(sure) >= SURE_DIGITS_OF_A_NUMBER
    digits = [
        DigitReading(c.top3[0][0], c.top3[0][1], c.box, c.top3, c.image, c.probabilities)
        for c, is_sure in zip(chosen, sure)
        if is_sure or in_a_number
    ]
    return ReadResult.one_line(digits)


def choose(whole: Candidate, config: ReadingConfig) -> list[Candidate]:
    """The whole piece or one way of cutting it: the one the model reads most surely (geometric mean of the
    confidences). One with strokes thicker than any digit's is dropped, cuts and all."""
    if whole.stroke > config.max_stroke:
        return []  # a blob: cutting it would only make smaller blobs
    if not whole.parts:
        return [whole]
    width, height = whole.box[2], whole.box[3]
    best, best_score = [whole], score([whole])
    if width > ALWAYS_CUT_ASPECT * height:
        best, best_score = [], -1.0
    margin = WHOLE_MARGIN if width <= DIGIT_SHAPED_ASPECT * height else 0.0
    for parts, cut_score in cuttings(whole):
        if cut_score - margin > best_score:
            best, best_score = parts, cut_score - margin
    return best


def cuttings(whole: Candidate) -> list[tuple[list[Candidate], float]]:
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


def score(candidates: list[Candidate]) -> float:
    """The geometric mean of the model's confidences; 0 when one of them cannot be a digit."""
    if not all(c.plausible for c in candidates):
        return 0.0
    return float(np.exp(np.mean([np.log(c.top3[0][1]) for c in candidates])))
