"""Finding the digits of a number in an ink mask: connected components, merging, splitting (numpy only).

Components are labelled over horizontal runs of ink (a few hundred per picture, not ~10^5 pixels) with a
vectorised union-find, so no scipy or OpenCV is needed; a stack of pictures is labelled in one pass. The
digits are then read left to right on one line.
"""

from __future__ import annotations

import itertools
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
    """8-connected components of a bool mask -> (int32 labels, 0 for paper and 1..n for ink; n).

    A stack of masks (N, H, W) is labelled in one pass, with labels unique across the stack.
    """
    return _label(mask)[:2]


@dataclass
class Components:
    """The connected components of a stack of ink masks, numbered 1..count across the stack."""

    labels: np.ndarray  # int32 (N, H, W): 0 for paper
    boxes: np.ndarray  # int64 (count, 4): x0, y0, x1, y1 (end exclusive) in their picture
    areas: np.ndarray  # int64 (count,): ink pixels
    pictures: np.ndarray  # int64 (count,): which picture of the stack each lies in

    @property
    def count(self) -> int:
        return len(self.areas)


def find_components(masks: np.ndarray) -> Components:
    """Label a stack of masks (N, H, W) and measure every component's box and area from its runs."""
    height = masks.shape[1]
    labels, count, rows, starts, ends, component = _label(masks)
    boxes = np.empty((count, 4), np.int64)
    # Runs come in row-major order: a component's first run is on its top row, its last on its bottom row.
    first = np.full(count, len(rows), np.int64)
    np.minimum.at(first, component, np.arange(len(rows)))
    last = np.zeros(count, np.int64)
    np.maximum.at(last, component, np.arange(len(rows)))
    boxes[:, 0] = np.iinfo(np.int64).max
    boxes[:, 2] = -1
    np.minimum.at(boxes[:, 0], component, starts)
    np.maximum.at(boxes[:, 2], component, ends)
    boxes[:, 1], boxes[:, 3] = rows[first] % (height + 1), rows[last] % (height + 1) + 1
    areas = np.bincount(component, weights=ends - starts, minlength=count).astype(np.int64)
    return Components(labels, boxes, areas, rows[first] // (height + 1))


# Measured 2026-12-02 (benchmarks/library_swaps.py): 1.6-2.4x faster than scipy.ndimage.label and OpenCV on a photo;
# on 1,000 masks OpenCV is 1.5x faster, the reading 0-9 % (scipy: none): not worth OpenCV's 153 MB in the runtime.
def _label(mask: np.ndarray):
    """Labels over horizontal runs of ink -> (labels, count, run rows, run starts, run ends, run components).

    For a stack the pictures are laid one under another with an empty row between them, so one 2-D pass
    labels them all; run rows are then in that mosaic (picture p's row y is p * (H + 1) + y).
    """
    if mask.ndim == 3:
        count_pictures, height, width = mask.shape
        mosaic = np.zeros((count_pictures, height + 1, width), bool)
        mosaic[:, :height] = mask
        labels, *rest = _label(mosaic.reshape(-1, width))
        return (labels.reshape(count_pictures, height + 1, width)[:, :height], *rest)
    height, width = mask.shape
    padded = np.zeros((height, width + 2), bool)
    padded[:, 1:-1] = mask
    # Every run has a start and an end edge on its row; in row-major order they alternate start, end, ...
    edge_rows, edge_columns = np.nonzero(padded[:, 1:] != padded[:, :-1])
    start_rows, starts, ends = edge_rows[0::2], edge_columns[0::2], edge_columns[1::2]  # ends exclusive
    labels = np.zeros((height, width), np.int32)
    if starts.size == 0:
        empty = np.zeros(0, np.int64)
        return labels, 0, empty, empty, empty, empty
    lengths = ends - starts
    root = _union(starts.size, *_touching_runs(start_rows, starts, ends, width))
    # Components numbered in the order of their first run, i.e. row-major, without sorting.
    is_root = root == np.arange(starts.size)
    component = (np.cumsum(is_root) - 1)[root]
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    labels.ravel()[np.repeat(start_rows * width + starts, lengths) + offsets] = np.repeat(component + 1, lengths)
    return labels, int(is_root.sum()), start_rows, starts, ends, component


def _touching_runs(rows: np.ndarray, starts: np.ndarray, ends: np.ndarray, width: int):
    """Pairs (upper, lower) of runs on neighbouring rows that touch, straight down or diagonally.

    Runs of a row are sorted and disjoint, so the runs of the next row touching run [s, e) are one
    contiguous range: from the first whose end reaches s to the last whose start is at most e. Two binary
    searches per run find it, with no pass over the pixels.
    """
    stride = width + 2
    below = (rows + 1) * stride
    first = np.searchsorted(rows * stride + ends, below + starts, side="left")
    last = np.searchsorted(rows * stride + starts, below + ends, side="right")
    counts = np.maximum(last - first, 0)
    upper = np.repeat(np.arange(len(starts)), counts)
    lower = np.repeat(first, counts) + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return upper, lower


def _union(count: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest node id reachable from each node over the edges (a, b): min-propagation + pointer jumping."""
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


def group_components(boxes: np.ndarray, areas: np.ndarray) -> list[list[int]]:
    """Which components form one digit (indices into boxes), left to right.

    Large components are digits or parts of one; two large ones stacked above each other (they share most
    of their columns), or nearly touching and together no wider than a digit, are one digit broken in two,
    like the hat of a 5. A small one joins the large one it
    sits over or next to; small ones far from every digit are specks and are dropped.
    """
    if len(boxes) <= 1:
        return [[0]] if len(boxes) else []  # one stroke of ink, as most pictures hold: nothing to decide
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
        distances = [
            _gap(box, boxes[index]) - (reach if _column_overlap(box, boxes[index]) >= 0.5 else 0) for box in group_boxes
        ]
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


def make_pieces(
    labels: np.ndarray, boxes: list[list[int]], areas: list[int], groups: list[list[int]], first_label: int = 1
) -> list[Piece]:
    """One ``Piece`` per group with at least 4 pixels: the union box and the mask of exactly its components.

    ``labels`` is the picture's labels; group indices count from the component labelled ``first_label``.
    Plain lists, not arrays: a picture has a handful of components, where numpy's per-call cost dominates.
    """
    pieces = []
    for group in groups:
        if len(group) == 1:  # most digits: one stroke of ink
            index = group[0]
            if areas[index] >= 4:
                x0, y0, x1, y1 = boxes[index]
                pieces.append(Piece((x0, y0, x1, y1), labels[y0:y1, x0:x1] == first_label + index))
            continue
        if sum(areas[i] for i in group) < 4:
            continue
        x0, y0 = min(boxes[i][0] for i in group), min(boxes[i][1] for i in group)
        x1, y1 = max(boxes[i][2] for i in group), max(boxes[i][3] for i in group)
        pieces.append(Piece((x0, y0, x1, y1), np.isin(labels[y0:y1, x0:x1], np.add(group, first_label))))
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
    cuts = _cut_columns(piece, digit_width, count)
    parts = [_trimmed(piece, left, right) for left, right in itertools.pairwise(cuts)]
    return [part for part in parts if part is not None]


def _cut_columns(
    piece: Piece,
    digit_width: float | None,
    count: int | None = None,
    profile: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[int]:
    """``split_touching``'s cuts as columns of the piece, 0 and its width included (``profile``: the piece's
    ``_column_profile``, when the caller has it)."""
    if digit_width is None:  # nothing to compare with: only wide pieces (1.8 % of MNIST digits are)
        if piece.width <= 1.3 * piece.height and count is None:
            return [0, piece.width]
        digit_width = 0.75 * piece.height  # a digit is about 3/4 as wide as it is tall
    count = count or int(np.clip(round(piece.width / max(digit_width, 1)), 1, 8))
    if count < 2 or piece.width <= 1.1 * piece.height:
        return [0, piece.width]
    ink_per_column, strokes_per_column = profile or _column_profile(piece)
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
    return [*cuts, piece.width]


def _column_profile(piece: Piece) -> tuple[np.ndarray, np.ndarray]:
    """Per column of the piece: ink pixels, and strokes crossed (runs of ink from top to bottom)."""
    mask = piece.mask
    run_starts = np.count_nonzero(mask[1:] & ~mask[:-1], axis=0) + mask[0]
    return mask.sum(0), run_starts


@dataclass
class CutLattice:
    """Where a wide piece may be cut into touching digits, for the reader to choose with the model's help.

    ``columns``: candidate cut columns, 0 and the piece's width included; ``parts[(i, j)]``: the ink between
    columns i and j, for every pair that could hold one digit. A reading is a path 0 -> last column.
    """

    columns: list[int]
    parts: dict[tuple[int, int], Piece]
    counts: tuple[int, int] = (2, 8)  # how many digits the piece may hold, fewest and most, from its width

    @property
    def last(self) -> int:
        return len(self.columns) - 1


MAX_CUT_COLUMNS = 18  # candidate cuts per piece: enough for 8 touching digits, few enough to read every part


def cut_lattice(piece: Piece, digit_width: float | None) -> CutLattice | None:
    """The candidate cuts of a piece that may be several touching digits (None when it is one digit).

    Offered for a piece wider than 1.1x its height among other digits, or 1.3x alone (8 % and under 2 % of
    MNIST digits are: a lone digit is read far more often than a number, and each offer costs the model a few
    more reads); the reader keeps a cutting only where the model reads it better. Candidates are
    ``split_touching``'s cuts for the digit count the widths suggest (at least two), one fewer and one more,
    and every column where a single stroke crosses at a local minimum of ink (where two digits touch), so
    digits of uneven widths (a 1 beside a 0) still find their cut; paths may hold 2 to two more digits
    than suggested.
    """
    if piece.width <= (1.3 if digit_width is None else 1.1) * piece.height:
        return None  # as tall as one digit: most pieces stop here, before being measured
    profile = _column_profile(piece)
    # Parts made at the cuts the widths suggest (fewer when a cut is skipped), but at least two: touching
    # digits are often narrow (a 1 beside a 7) and their sum no wider than the digits beside them.
    suggested = max(2, len(_cut_columns(piece, digit_width, profile=profile)) - 1)
    columns = {
        c
        for count in (suggested - 1, suggested, suggested + 1)
        if count >= 2
        for c in _cut_columns(piece, digit_width, count, profile)
    }
    ink, strokes = profile
    never = np.full(1, np.iinfo(ink.dtype).max, ink.dtype)
    padded = np.concatenate([never, ink, never])  # the ends are never a local minimum
    thin = np.flatnonzero((strokes <= 1) & (ink <= padded[:-2]) & (ink <= padded[2:]))
    thin = [int(c) for c in thin[np.argsort(ink[thin], kind="stable")] if 0 < c < piece.width]
    for column in thin:  # the thinnest first, none within 2 pixels of one already taken
        if len(columns) >= MAX_CUT_COLUMNS:
            break
        if all(abs(column - taken) > 2 for taken in columns):
            columns.add(column)
    columns = sorted(columns)
    parts = {}
    for i in range(len(columns)):
        for j in range(i + 1, len(columns)):
            width = columns[j] - columns[i]
            if width > 1.25 * piece.height:
                break
            if width >= 0.15 * piece.height and (i, j) != (0, len(columns) - 1):
                part = _trimmed(piece, columns[i], columns[j])
                # Digits written side by side each fill most of the line's height; a shorter part is a
                # fragment of one (the tail of a 2, the bar of a 4), however surely the model reads it.
                if part is not None and part.height >= 0.6 * piece.height:
                    parts[(i, j)] = part
    return CutLattice(columns, parts, (2, suggested + 2))


def _trimmed(piece: Piece, left: int, right: int) -> Piece | None:
    """The columns [left, right) of a piece, cut down to the rows and columns that hold ink."""
    mask = piece.mask[:, left:right]
    rows, columns = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return None
    x0, y0 = piece.box[0] + left, piece.box[1]
    mask = mask[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    return Piece((x0 + int(columns[0]), y0 + int(rows[0]), x0 + int(columns[-1]) + 1, y0 + int(rows[-1]) + 1), mask)


def find_digit_choices(mask: np.ndarray) -> list[tuple[Piece, CutLattice | None]]:
    """The digits in an ink mask, left to right, each as (whole piece, where it may be cut into several)."""
    return digit_choices(find_components(mask[None]))[0]


def digit_choices(components: Components) -> list[list[tuple[Piece, CutLattice | None]]]:
    """For each picture of a labelled stack: its digits, left to right, as (whole piece, cut lattice or None).

    Group, drop stray marks, and where a piece may be several touching digits propose where to cut it;
    the reader keeps the cutting the model reads most surely, the whole included.
    """
    # Components are numbered picture by picture (the labelling runs row-major down the stack).
    bounds = np.searchsorted(components.pictures, np.arange(len(components.labels) + 1)).tolist()
    all_boxes, all_areas = components.boxes.tolist(), components.areas.tolist()
    found = []
    for picture, (low, high) in enumerate(itertools.pairwise(bounds)):
        boxes, areas = all_boxes[low:high], all_areas[low:high]
        groups = group_components(components.boxes[low:high], components.areas[low:high])
        found.append(_choices(make_pieces(components.labels[picture], boxes, areas, groups, low + 1)))
    return found


def _choices(pieces: list[Piece]) -> list[tuple[Piece, CutLattice | None]]:
    if len(pieces) <= 1:  # nothing to compare a single piece with
        return [(piece, cut_lattice(piece, None)) for piece in pieces]
    pieces = _digit_sized(pieces)
    width = _digit_width(pieces)
    return [(piece, cut_lattice(piece, width)) for piece in pieces]


def _digit_sized(pieces: list[Piece]) -> list[Piece]:
    """Drop pieces much shorter than the tallest: marks, not digits."""
    tallest = max(piece.height for piece in pieces)
    return [piece for piece in pieces if piece.height >= 0.35 * tallest]


def _digit_width(pieces: list[Piece]) -> float | None:
    """The width of one digit in this picture, from the pieces that look like one digit (None: too few)."""
    tallest = max(piece.height for piece in pieces)
    single = [piece.width for piece in pieces if piece.width <= 1.0 * piece.height]
    # At least half the height: a row of narrow 1s must not make every 0 look like two.
    return max(float(np.median(single)), 0.5 * tallest) if len(single) >= 2 else None


def find_digits(mask: np.ndarray) -> list[Piece]:
    """The digits in an ink mask, left to right, cut where their widths suggest (no model to ask)."""
    pieces = [piece for piece, _ in find_digit_choices(mask)]
    width = _digit_width(pieces) if len(pieces) > 1 else None
    return [part for piece in pieces for part in split_touching(piece, width)]
