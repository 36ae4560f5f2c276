"""Finding digits in an ink mask: labelling against a plain flood fill, merging broken strokes, where to cut."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from digitocr.reading.segment import CutLattice, Piece, cut_lattice, find_digit_choices, label_components


def flood_fill_labels(mask: np.ndarray) -> np.ndarray:
    """The textbook 8-connected flood fill: slow, obviously right; the reference for the vectorised one."""
    labels = np.zeros(mask.shape, int)
    count = 0
    for start in zip(*np.nonzero(mask)):
        if labels[start]:
            continue
        count += 1
        labels[start] = count
        queue = deque([start])
        while queue:
            y, x = queue.popleft()
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = count
                        queue.append((ny, nx))
    return labels


@pytest.mark.parametrize("seed", range(6))
def test_labels_match_a_flood_fill(seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((40, 50)) < [0.2, 0.35, 0.45, 0.55, 0.05, 0.3][seed]
    labels, count = label_components(mask)
    reference = flood_fill_labels(mask)
    assert count == reference.max()
    # Same partition: each reference component maps to exactly one label and back.
    pairs = set(zip(reference[mask].tolist(), labels[mask].tolist()))
    assert len(pairs) == count and (labels[~mask] == 0).all()


def test_labels_of_an_empty_mask_and_a_long_snake():
    assert label_components(np.zeros((5, 5), bool))[1] == 0
    snake = np.zeros((41, 41), bool)
    snake[::4, 1:-1] = True
    snake[1::4, -2] = snake[2::4, -2] = snake[3::4, 1] = True  # one path zig-zagging down
    snake[3::8, 1] = False
    snake[3::8, -2] = True
    snake[1::8, -2] = snake[2::8, -2] = True
    snake[5::8, 1] = snake[6::8, 1] = snake[7::8, 1] = True
    snake[5::8, -2] = snake[6::8, -2] = False
    assert label_components(snake)[1] == flood_fill_labels(snake).max()


def draw(boxes: list[tuple[int, int, int, int]], shape=(60, 200)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = True
    return mask


def wholes(mask: np.ndarray) -> list[Piece]:
    """The pieces the reader finds in a mask, each whole (before any cutting)."""
    return [whole for whole, _ in find_digit_choices(mask)]


def two_part_paths(lattice: CutLattice) -> dict[int, tuple[Piece, Piece]]:
    """The ways the lattice offers to read its piece as two digits (paths 0 -> k -> last through its parts), by
    the column of the cut."""
    return {
        lattice.columns[k]: (lattice.parts[(0, k)], lattice.parts[(k, lattice.last)])
        for k in range(1, lattice.last)
        if (0, k) in lattice.parts and (k, lattice.last) in lattice.parts
    }


def test_the_hat_of_a_five_joins_its_body_and_specks_are_dropped():
    mask = draw(
        [
            (20, 10, 40, 13),  # the hat, a separate stroke
            (20, 16, 23, 30),
            (20, 28, 40, 31),
            (37, 28, 40, 50),
            (20, 47, 40, 50),  # the body
            (120, 10, 123, 50),  # a 1 further right
            (180, 55, 182, 57),
        ]
    )  # a speck
    pieces = wholes(mask)
    assert [piece.box[0] for piece in pieces] == [20, 120]
    assert pieces[0].box == (20, 10, 40, 50)


def test_digits_are_returned_left_to_right():
    mask = draw([(150, 10, 170, 50), (10, 10, 30, 50), (80, 10, 100, 50)])
    assert [piece.box[0] for piece in wholes(mask)] == [10, 80, 150]


def ring_mask(width: int, height: int, stroke: int = 3) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    inside = ((xs - width / 2 + 0.5) / (width / 2)) ** 2 + ((ys - height / 2 + 0.5) / (height / 2)) ** 2 <= 1
    inner = ((xs - width / 2 + 0.5) / (width / 2 - stroke)) ** 2 + (
        (ys - height / 2 + 0.5) / (height / 2 - stroke)
    ) ** 2 <= 1
    return inside & ~inner


def test_two_touching_zeros_may_be_cut_in_two_but_one_wide_zero_may_not():
    zero = ring_mask(28, 40)
    two = np.concatenate([zero[:, :-1], zero], axis=1)  # they share a column: one component
    lattice = cut_lattice(Piece((0, 0, two.shape[1], 40), two), digit_width=None)
    assert lattice is not None
    assert any(all(24 <= part.width <= 30 for part in path) for path in two_part_paths(lattice).values())
    wide = ring_mask(52, 40)
    assert cut_lattice(Piece((0, 0, 52, 40), wide), digit_width=None) is None


def test_touching_digits_in_a_number_may_be_cut_using_the_width_of_their_neighbours():
    zero = ring_mask(26, 40)
    row = np.zeros((40, 200), bool)
    row[:, 0:26] = zero
    row[:, 40:66] = zero
    row[:, 80:106] = zero
    row[:, 105:131] = zero  # touches the third
    (first, no_cut), (second, no_cut_either), (pair, lattice) = find_digit_choices(row)
    assert no_cut is None and no_cut_either is None and all(24 <= piece.width <= 26 for piece in (first, second))
    assert pair.box[0] == 80 and lattice is not None
    shared = 105 - pair.box[0]  # the column both touching zeros hold, in the piece's columns
    paths = two_part_paths(lattice)
    near = [column for column in paths if abs(column - shared) <= 1]
    assert near and all(24 <= part.width <= 26 for part in paths[near[0]])  # the shared column goes to one


def test_a_stack_is_labelled_as_each_picture_alone_with_boxes_in_its_own_picture():
    from digitocr.reading.segment import find_components

    rng = np.random.default_rng(4)
    masks = rng.random((5, 30, 40)) < 0.3
    masks[2] = False  # an empty picture in the middle
    masks[:, -1, :] = masks[:, 0, :] = True  # ink on the bottom and top rows: must not join across pictures
    components = find_components(masks)
    expected_counts = [label_components(mask)[1] for mask in masks]
    assert np.bincount(components.pictures, minlength=5).tolist() == expected_counts
    for picture, mask in enumerate(masks):
        labels = components.labels[picture]
        assert ((labels > 0) == mask).all()
        for number in np.flatnonzero(components.pictures == picture):
            ys, xs = np.nonzero(labels == number + 1)
            assert components.boxes[number].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            assert components.areas[number] == ys.size


def test_the_cut_lattice_offers_the_true_cut_between_digits_of_uneven_width():
    one = np.zeros((40, 6), bool)
    one[:, 2:5] = True  # a narrow 1
    zero = ring_mask(28, 40)
    row = np.concatenate([one, zero, one, zero[:, :-1]], axis=1)  # 1 0 1 0, each touching the next
    row[20, :] |= np.convolve(row[20], [1, 1, 1], "same") > 0  # a touching stroke at every junction
    piece = Piece((0, 0, row.shape[1], 40), row)
    lattice = cut_lattice(piece, digit_width=None)
    assert lattice is not None and lattice.columns[0] == 0 and lattice.columns[-1] == row.shape[1]
    junctions = [6, 34, 40]  # where the digits meet
    for junction in junctions:
        assert min(abs(column - junction) for column in lattice.columns) <= 2
    assert all(part.height >= 0.6 * 40 for part in lattice.parts.values())  # no fragments
    assert cut_lattice(Piece((0, 0, 28, 40), zero), digit_width=None) is None  # one digit: nothing to cut
