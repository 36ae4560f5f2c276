"""Greedy CTC decoding of the line model's columns into digits, numpy only (the torch-free reader needs it too).

Per column the best class; runs of one class are one emission; blanks separate emissions, so a repeated digit
needs a blank between its two runs ("3", blank, "3" is "33"; "3", "3" is "3"). Beam search was not needed:
with one symbol per digit and a peaked model the best path and the best labelling agree (Graves et al., 2006).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digitocr.config import BLANK


@dataclass
class Emission:
    """One decoded digit: the run of columns whose best class it is."""

    digit: int
    first: int  # its first column
    last: int  # its last column (inclusive)
    peak: int  # the column where the digit is likeliest
    confidence: float  # the digit's probability at ``peak``


def decode(probabilities: np.ndarray, columns: np.ndarray | None = None) -> list[list[Emission]]:
    """Probabilities (N, T, 11) per column, each line's own ``columns`` (N,; the rest is padding, None: all T)
    -> per line, its digits left to right."""
    count, length, _ = probabilities.shape
    best = probabilities.argmax(-1)  # (N, T)
    if columns is not None:
        best[np.arange(length)[None] >= np.asarray(columns)[:, None]] = BLANK
    previous = np.concatenate([np.full((count, 1), BLANK), best[:, :-1]], axis=1)
    following = np.concatenate([best[:, 1:], np.full((count, 1), BLANK)], axis=1)
    starts = np.argwhere((best != BLANK) & (best != previous))  # (E, 2): line, column; row-major: line order
    ends = np.argwhere((best != BLANK) & (best != following))  # the same runs, in the same order
    decoded: list[list[Emission]] = [[] for _ in range(count)]
    for (line, first), (_, last) in zip(starts.tolist(), ends.tolist()):
        digit = int(best[line, first])
        run = probabilities[line, first : last + 1, digit]
        peak = first + int(run.argmax())
        decoded[line].append(Emission(digit, first, last, peak, float(run.max())))
    return decoded


def texts(probabilities: np.ndarray, columns: np.ndarray | None = None) -> list[str]:
    """Only the strings: the digits of each line."""
    return ["".join(str(e.digit) for e in line) for line in decode(probabilities, columns)]
