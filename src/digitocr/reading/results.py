"""What reading returns: the digits of a picture, each with its confidence, box and alternatives; and the compact
form in which a reading worker sends them back (``pack_answers`` / ``unpack_answers``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from digitocr.config import IMAGE_SIZE, NUM_CLASSES


@dataclass
class DigitReading:
    digit: int
    confidence: float  # softmax probability of ``digit``
    box: tuple[int, int, int, int]  # x, y, w, h in the input picture's pixels
    top3: list[tuple[int, float]]  # best three (digit, probability), best first
    image: np.ndarray = field(repr=False, default=None)  # (28, 28) float32 in [0, 1]: what the model saw
    probabilities: np.ndarray = field(repr=False, default=None)  # (10,) all class probabilities, digit 0 first

    def to_dict(self) -> dict:
        return {
            "digit": self.digit,
            "confidence": self.confidence,
            "box": list(self.box),
            "top3": [{"digit": d, "confidence": p} for d, p in self.top3],
        }


@dataclass
class ReadResult:
    text: str  # the digits left to right; "" when none were found
    digits: list[DigitReading]

    def to_dict(self) -> dict:
        return {"text": self.text, "digits": [digit.to_dict() for digit in self.digits]}


def pack_answers(answers: list) -> tuple:
    """Results (and ImageErrors) -> plain tuples plus two stacked arrays: a tenth of the cost of pickling the
    dataclasses with a small array each, which was as slow as reading the pictures."""
    digits = [d for answer in answers if isinstance(answer, ReadResult) for d in answer.digits]
    images = np.stack([d.image for d in digits]) if digits else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    probabilities = np.stack([d.probabilities for d in digits]) if digits else np.zeros((0, NUM_CLASSES), np.float32)
    rows = [
        (answer.text, [(d.digit, d.confidence, d.box, d.top3) for d in answer.digits])
        if isinstance(answer, ReadResult)
        else answer
        for answer in answers
    ]
    return rows, images, probabilities


def unpack_answers(packed: tuple) -> list:
    """``pack_answers``' output -> the results (and errors) it was made from."""
    rows, images, probabilities = packed
    answers, index = [], 0
    for row in rows:
        if isinstance(row, Exception):
            answers.append(row)
            continue
        text, digits = row
        answers.append(
            ReadResult(
                text,
                [
                    DigitReading(digit, confidence, box, top3, images[index + k], probabilities[index + k])
                    for k, (digit, confidence, box, top3) in enumerate(digits)
                ],
            )
        )
        index += len(digits)
    return answers
