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
class LineReading:
    text: str  # the line's digits, left to right
    box: tuple[int, int, int, int]  # x, y, w, h of its digits in the input picture's pixels
    digits: list[DigitReading]

    @classmethod
    def of_digits(cls, digits: list[DigitReading]) -> LineReading:
        """A line of these digits: its text, and its box the union of theirs ((0, 0, 0, 0) for none)."""
        if not digits:
            return cls("", (0, 0, 0, 0), [])
        x0, y0 = min(d.box[0] for d in digits), min(d.box[1] for d in digits)
        x1, y1 = max(d.box[0] + d.box[2] for d in digits), max(d.box[1] + d.box[3] for d in digits)
        return cls("".join(str(d.digit) for d in digits), (x0, y0, x1 - x0, y1 - y0), digits)

    def to_dict(self) -> dict:
        return {"text": self.text, "box": list(self.box), "digits": [digit.to_dict() for digit in self.digits]}


@dataclass
class ReadResult:
    text: str  # the digits of each line left to right, lines top to bottom joined by "\n"; "" when none were found
    digits: list[DigitReading]  # every line's digits, in reading order
    lines: list[LineReading] = field(default_factory=list)  # the lines that hold digits, top to bottom

    @classmethod
    def of_lines(cls, lines: list[LineReading]) -> ReadResult:
        lines = [line for line in lines if line.digits]
        return cls("\n".join(line.text for line in lines), [d for line in lines for d in line.digits], lines)

    @classmethod
    def one_line(cls, digits: list[DigitReading]) -> ReadResult:
        """Digits read as one line (the classifier path): the line's box is the union of theirs."""
        return cls.of_lines([LineReading.of_digits(digits)])

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "digits": [digit.to_dict() for digit in self.digits],
            "lines": [line.to_dict() for line in self.lines],
        }


def pack_answers(answers: list) -> tuple:
    """Results (and ImageErrors) -> plain tuples plus two stacked arrays: a tenth of the cost of pickling the
    dataclasses with a small array each, which was as slow as reading the pictures."""
    digits = [d for answer in answers if isinstance(answer, ReadResult) for d in answer.digits]
    images = np.stack([d.image for d in digits]) if digits else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    probabilities = np.stack([d.probabilities for d in digits]) if digits else np.zeros((0, NUM_CLASSES), np.float32)
    rows = [
        (
            [(d.digit, d.confidence, d.box, d.top3) for d in answer.digits],
            [(line.box, len(line.digits)) for line in answer.lines],
        )
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
        digits, lines = row
        readings = [
            DigitReading(digit, confidence, box, top3, images[index + k], probabilities[index + k])
            for k, (digit, confidence, box, top3) in enumerate(digits)
        ]
        index += len(digits)
        made, start = [], 0
        for box, count in lines:
            mine = readings[start : start + count]
            made.append(LineReading("".join(str(d.digit) for d in mine), box, mine))
            start += count
        answers.append(ReadResult.of_lines(made))
    return answers
