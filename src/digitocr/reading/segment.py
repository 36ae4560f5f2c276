"""Finding the digits of a number in an ink mask: connected components, merging, splitting (numpy only).

Components are labelled over horizontal runs of ink (a few hundred per picture, not ~10^5 pixels) with a
vectorised union-find, so no scipy or OpenCV is needed. The digits are then read left to right on one line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Piece:
    """One digit candidate: its box (x0, y0, x1, y1; end exclusive) in working pixels and its ink mask there."""

    box: tuple[int, int, int, int]
    mask: np.ndarray  # bool (y1 - y0, x1 - x0)

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a bool mask -> (int32 labels, 0 for paper and 1..n for ink; n)."""
    height, width = mask.shape
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    start_rows, starts = np.nonzero(edges == 1)  # row-major order, so starts and ends pair up
    _, ends = np.nonzero(edges == -1)  # exclusive
    labels = np.zeros((height, width), np.int32)
    if starts.size == 0:
        return labels, 0
    lengths = ends - starts
    run_of_pixel = np.repeat(np.arange(starts.size), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    flat = np.repeat(start_rows * width + starts, lengths) + offsets
    runs = np.full(height * width, -1, np.int64)
    runs[flat] = run_of_pixel
    runs = runs.reshape(height, width)
    # Runs in neighbouring rows that touch, straight down or diagonally, belong together.
    pairs = [(runs[:-1, :], runs[1:, :]), (runs[:-1, :-1], runs[1:, 1:]), (runs[:-1, 1:], runs[1:, :-1])]
    upper = np.concatenate([a[(a >= 0) & (b >= 0)] for a, b in pairs])
    lower = np.concatenate([b[(a >= 0) & (b >= 0)] for a, b in pairs])
    root = _union(starts.size, upper, lower)
    _, component = np.unique(root, return_inverse=True)
    labels.ravel()[flat] = component[run_of_pixel] + 1
    return labels, int(component.max()) + 1


def _union(count: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest node id reachable from each node over the edges (a, b): min-propagation + pointer jumping."""
    if a.size:
        key = np.unique(a * count + b)
        a, b = key // count, key % count
    root = np.arange(count)
    while True:
        low = np.minimum(root[a], root[b])
        new = root.copy()
        np.minimum.at(new, a, low)
        np.minimum.at(new, b, low)
        while True:  # jump to the root's root until stable: the O(log n) part
            jumped = new[new]
            if np.array_equal(jumped, new):
                break
            new = jumped
        if np.array_equal(new, root):
            return root
        root = new


def component_boxes(labels: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per component (label 1..count): boxes int (count, 4) as x0, y0, x1, y1 (end exclusive), and areas."""
    ys, xs = np.nonzero(labels)
    which = labels[ys, xs] - 1
    boxes = np.empty((count, 4), np.int64)
    boxes[:, :2] = np.iinfo(np.int64).max
    boxes[:, 2:] = -1
    np.minimum.at(boxes[:, 0], which, xs)
    np.minimum.at(boxes[:, 1], which, ys)
    np.maximum.at(boxes[:, 2], which, xs + 1)
    np.maximum.at(boxes[:, 3], which, ys + 1)
    return boxes, np.bincount(which, minlength=count)


def group_components(boxes: np.ndarray, areas: np.ndarray) -> list[list[int]]:
    """Which components form one digit (indices into boxes), left to right.

    Large components are digits or parts of one; two large ones stacked above each other (they share most
    of their columns), or nearly touching and together no wider than a digit, are one digit broken in two,
    like the hat of a 5. A small one joins the large one it
    sits over or next to; small ones far from every digit are specks and are dropped.
    """
    if len(boxes) == 0:
        return []
    heights = boxes[:, 3] - boxes[:, 1]
    big = (heights >= 0.4 * heights.max()) | (areas >= 0.15 * areas.max())
    groups: list[list[int]] = []
    group_boxes: list[np.ndarray] = []
    close = 0.08 * heights.max()
    for index in np.flatnonzero(big)[np.argsort(boxes[big, 0], kind="stable")]:
        for number, box in enumerate(group_boxes):
            if _column_overlap(box, boxes[index]) >= 0.4 or _one_digit_apart(box, boxes[index], close):
                groups[number].append(int(index))
                group_boxes[number] = _union_box(box, boxes[index])
                break
        else:
            groups.append([int(index)])
            group_boxes.append(boxes[index].copy())
    reach = 0.15 * heights.max()
    for index in np.flatnonzero(~big):
        distances = [_gap(box, boxes[index]) - (reach if _column_overlap(box, boxes[index]) >= 0.5 else 0)
                     for box in group_boxes]
        nearest = int(np.argmin(distances))
        if distances[nearest] <= reach:
            groups[nearest].append(int(index))
            group_boxes[nearest] = _union_box(group_boxes[nearest], boxes[index])
    order = np.argsort([box[0] + box[2] for box in group_boxes], kind="stable")
    return [groups[i] for i in order]


def _one_digit_apart(a: np.ndarray, b: np.ndarray, close: float) -> bool:
    """Two pieces nearly touching whose union is still no wider than one digit: a stroke broken by the cut."""
    union = _union_box(a, b)
    return _gap(a, b) <= close and union[2] - union[0] <= 0.8 * (union[3] - union[1])


def _column_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Shared columns as a fraction of the narrower box."""
    shared = min(a[2], b[2]) - max(a[0], b[0])
    return max(shared, 0) / max(min(a[2] - a[0], b[2] - b[0]), 1)


def _gap(a: np.ndarray, b: np.ndarray) -> float:
    dx = max(a[0] - b[2], b[0] - a[2], 0)
    dy = max(a[1] - b[3], b[1] - a[3], 0)
    return float(np.hypot(dx, dy))


def _union_box(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])])


def make_pieces(labels: np.ndarray, boxes: np.ndarray, groups: list[list[int]]) -> list[Piece]:
    """One ``Piece`` per group: the union box and the mask of exactly that group's components."""
    pieces = []
    for group in groups:
        x0, y0 = boxes[group, 0].min(), boxes[group, 1].min()
        x1, y1 = boxes[group, 2].max(), boxes[group, 3].max()
        mask = np.isin(labels[y0:y1, x0:x1], np.asarray(group) + 1)
        pieces.append(Piece((int(x0), int(y0), int(x1), int(y1)), mask))
    return pieces


def split_touching(piece: Piece, digit_width: float | None, count: int | None = None) -> list[Piece]:
    """Cut a piece much wider than one digit into several at the thinnest columns near the expected cuts.

    Only proposed where the shape allows it: wider than 1.1x its height and than the digits beside it
    (with no digits beside it to compare: 1.3x its height), and each cut goes through a column crossing
    a single stroke (where two digits touch) within a fifth of a digit of where it is expected; a cut
    through a wide 0 would cross two strokes and is not made, unless the piece is wider than 1.5x its
    height (0.5 % of MNIST digits are), when the column with the least ink is cut anyway. ``count``
    overrides the number of digits the widths suggest.
    """
    if digit_width is None:  # nothing to compare with: only wide pieces (1.8 % of MNIST digits are)
        if piece.width <= 1.3 * piece.height and count is None:
            return [piece]
        digit_width = 0.75 * piece.height  # a digit is about 3/4 as wide as it is tall
    count = count or int(np.clip(round(piece.width / max(digit_width, 1)), 1, 8))
    if count < 2 or piece.width <= 1.1 * piece.height:
        return [piece]
    ink_per_column = piece.mask.sum(0)
    strokes_per_column = np.count_nonzero(np.diff(np.pad(piece.mask, ((1, 0), (0, 0))).astype(np.int8), axis=0) == 1,
                                          axis=0)
    step = piece.width / count
    cuts = [0]
    for i in range(1, count):
        expected = round(i * step)
        window = max(1, round(step / 5))
        lo, hi = max(cuts[-1] + 1, expected - window), min(piece.width - 1, expected + window + 1)
        if lo >= hi:
            continue
        columns = np.arange(lo, hi)
        # Fewest strokes crossed, then least ink, then nearest the expected cut.
        order = np.lexsort((np.abs(columns - expected), ink_per_column[lo:hi], strokes_per_column[lo:hi]))
        best = int(columns[order[0]])
        if strokes_per_column[best] <= 1 or piece.width > 1.5 * piece.height:
            cuts.append(best)
    cuts.append(piece.width)
    parts = [_trimmed(piece, left, right) for left, right in zip(cuts[:-1], cuts[1:])]
    return [part for part in parts if part is not None]


def _trimmed(piece: Piece, left: int, right: int) -> Piece | None:
    """The columns [left, right) of a piece, cut down to the rows and columns that hold ink."""
    mask = piece.mask[:, left:right]
    rows, columns = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return None
    x0, y0 = piece.box[0] + left, piece.box[1]
    mask = mask[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1]
    return Piece((x0 + int(columns[0]), y0 + int(rows[0]), x0 + int(columns[-1]) + 1, y0 + int(rows[-1]) + 1),
                 mask)


def find_digit_choices(mask: np.ndarray) -> list[tuple[Piece, list[list[Piece]]]]:
    """The digits in an ink mask, left to right, each as (whole piece, ways to cut it into touching digits).

    Label, group, drop stray marks, and where a piece may be several touching digits propose cuts into
    the number of digits its width suggests and one fewer and one more; the reader keeps the way the
    model reads most surely, the whole included.
    """
    labels, count = label_components(mask)
    if count == 0:
        return []
    boxes, areas = component_boxes(labels, count)
    pieces = make_pieces(labels, boxes, group_components(boxes, areas))
    tallest = max(piece.height for piece in pieces)
    pieces = [piece for piece in pieces if piece.height >= 0.35 * tallest and piece.mask.sum() >= 4]
    # Widths of the pieces that look like one digit give the expected width of a digit in this picture.
    single = [piece.width for piece in pieces if piece.width <= 1.0 * piece.height]
    digit_width = max(float(np.median(single)), 0.5 * tallest) if len(single) >= 2 else None
    # (at least half the height: a row of narrow 1s must not make every 0 look like two)
    choices = []
    for piece in pieces:
        parts = split_touching(piece, digit_width)
        ways = []
        if len(parts) > 1:
            ways = [split_touching(piece, digit_width, count) for count in (len(parts) - 1, len(parts) + 1)]
            ways = [parts] + [way for way in ways if len(way) > 1]
        choices.append((piece, ways))
    return choices


def find_digits(mask: np.ndarray) -> list[Piece]:
    """The digits in an ink mask, left to right, cut as their widths suggest."""
    return [part for whole, ways in find_digit_choices(mask) for part in (ways[0] if ways else [whole])]
