"""Greedy CTC decoding against hand-worked examples: blank runs, repeats, padding, and each digit's columns."""

from __future__ import annotations

import numpy as np
import pytest

from digitocr.config import BLANK
from digitocr.ctc import Emission, decode, texts

B = BLANK  # "_" in the comments below


def columns(*best: tuple[int, float]) -> np.ndarray:
    """(T, 11) probabilities: per column its best class and that class's probability, the rest shared evenly."""
    probabilities = np.empty((len(best), BLANK + 1), dtype=np.float32)
    for column, (label, probability) in enumerate(best):
        probabilities[column] = (1 - probability) / BLANK
        probabilities[column, label] = probability
    return probabilities


def batch(*lines: np.ndarray) -> np.ndarray:
    """Lines of columns (T_i, 11) padded with blank columns to one (N, T, 11) array, as a batch's padding is."""
    length = max(len(line) for line in lines)
    padding = columns((B, 0.9))
    return np.stack([np.concatenate([line, *[padding] * (length - len(line))]) for line in lines])


def test_a_run_of_one_digit_is_one_emission_at_its_likeliest_column():
    # 3 3 3: one "3" over columns 0-2, likeliest at column 1.
    [line] = decode(batch(columns((3, 0.6), (3, 0.8), (3, 0.7))))
    assert line == [Emission(digit=3, first=0, last=2, peak=1, confidence=pytest.approx(0.8))]


def test_repeats_are_collapsed_unless_a_blank_separates_them():
    together = columns((3, 0.9), (3, 0.9))  # 3 3 -> "3"
    apart = columns((3, 0.9), (B, 0.9), (3, 0.9))  # 3 _ 3 -> "33"
    assert texts(batch(together, apart)) == ["3", "33"]
    [_, line] = decode(batch(together, apart))
    assert [(e.first, e.last) for e in line] == [(0, 0), (2, 2)]


def test_blank_runs_separate_digits_and_carry_nothing():
    # _ _ 5 5 _ _ _ 7 _ -> "57": the 5 on columns 2-3, the 7 on column 7.
    best = [(B, 0.9), (B, 0.8), (5, 0.5), (5, 0.7), (B, 0.9), (B, 0.6), (B, 0.9), (7, 0.4), (B, 0.9)]
    probabilities = batch(columns(*best))
    [line] = decode(probabilities)
    assert line == [
        Emission(digit=5, first=2, last=3, peak=3, confidence=pytest.approx(0.7)),
        Emission(digit=7, first=7, last=7, peak=7, confidence=pytest.approx(0.4)),
    ]


def test_neighbouring_digits_need_no_blank_between_them():
    # 1 1 2 8 8 8 -> "128", and runs that touch the line's first and last columns end there.
    [line] = decode(batch(columns((1, 0.9), (1, 0.5), (2, 0.6), (8, 0.3), (8, 0.5), (8, 0.5))))
    assert [(e.digit, e.first, e.last, e.peak) for e in line] == [(1, 0, 1, 0), (2, 2, 2, 2), (8, 3, 5, 4)]
    assert line[2].confidence == pytest.approx(0.5)  # a tie: the first of the likeliest columns is the peak


def test_confidence_is_the_digits_own_probability_at_its_peak_not_the_columns_best():
    # Column 1's best class is still 6 though 6 is less likely there than at column 0.
    probabilities = batch(columns((6, 0.9), (6, 0.4)))
    probabilities[0, 1, 0] = 0.35  # column 1: 6 at 0.4 ahead of 0 at 0.35
    [[emission]] = decode(probabilities)
    assert (emission.peak, emission.confidence) == (0, pytest.approx(0.9))


def test_padding_columns_are_never_read():
    # Both lines end in a "9" past their own columns; the second's "4" is cut at its last own column.
    first = columns((2, 0.9), (B, 0.9), (9, 0.9), (9, 0.9))
    second = columns((B, 0.9), (B, 0.9), (4, 0.6), (4, 0.9), (9, 0.9))
    probabilities = batch(first, second)
    assert texts(probabilities) == ["29", "49"]  # without the columns, the padding is read
    assert texts(probabilities, np.array([2, 3])) == ["2", "4"]
    [_, [four]] = decode(probabilities, np.array([2, 3]))
    assert four == Emission(digit=4, first=2, last=2, peak=2, confidence=pytest.approx(0.6))


def test_all_blank_and_zero_columns_read_nothing():
    blank = columns((B, 0.9), (B, 0.5), (B, 0.9))
    digits = columns((7, 0.9), (7, 0.9), (B, 0.9))
    assert decode(batch(blank, digits), np.array([3, 0])) == [[], []]
    assert texts(batch(blank, digits), np.array([3, 0])) == ["", ""]
    assert decode(np.zeros((0, 5, BLANK + 1), dtype=np.float32)) == []


def test_several_lines_are_decoded_each_on_its_own():
    lines = [
        columns((B, 0.9), (1, 0.9), (B, 0.9), (1, 0.8)),  # _ 1 _ 1 -> "11"
        columns((0, 0.7), (0, 0.9), (B, 0.9), (B, 0.9), (5, 0.6), (B, 0.9)),  # 0 0 _ _ 5 _ -> "05"
        columns((B, 0.9)),  # a blank line, one column
        columns((9, 0.9), (8, 0.8), (7, 0.7)),  # 9 8 7 -> "987"
    ]
    probabilities = batch(*lines)
    widths = np.array([len(line) for line in lines])
    assert texts(probabilities, widths) == ["11", "05", "", "987"]
    decoded = decode(probabilities, widths)
    assert [[(e.first, e.last) for e in line] for line in decoded] == [
        [(1, 1), (3, 3)],
        [(0, 1), (4, 4)],
        [],
        [(0, 0), (1, 1), (2, 2)],
    ]
    assert [e.confidence for e in decoded[3]] == pytest.approx([0.9, 0.8, 0.7])
    # Each line's emissions are its own: decoding it alone gives the same.
    for line, width, expected in zip(lines, widths, decoded):
        assert decode(line[None], np.array([width])) == [expected]


def test_decoding_leaves_the_probabilities_as_they_were():
    probabilities = batch(columns((4, 0.9), (9, 0.9)))
    before = probabilities.copy()
    decode(probabilities, np.array([1]))
    assert np.array_equal(probabilities, before)
