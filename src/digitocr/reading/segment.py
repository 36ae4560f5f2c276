"""Finding the digits of a number in an ink mask: connected components, merging, splitting (numpy only).

Components are labelled over horizontal runs of ink (a few hundred per picture, not ~10^5 pixels) with a
vectorised union-find, so no scipy or OpenCV is needed; a stack of pictures is labelled in one pass. The
digits are then read left to right on one line.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

# --- the numbers that decide which ink is a digit and where touching digits may be cut -------------------------
# Sizes are shares of the tallest component's (or the piece's) height unless a unit is given. "Not tuned": the
# value the first reader (2026-11-25) set, never measured against another since; benchmarks/reading_accuracy.py
# (numbers with gaps, touching numbers, single digits) is the measure to change one by.

# Grouping components into digits (``group_components``, ``make_pieces``).
BIG_HEIGHT_SHARE = 0.4  # a component this tall is a digit or a part of one (a stroke, the hat of a 5); not tuned
BIG_AREA_SHARE = 0.15  # ... or one with this share of the largest one's ink (a squat digit); not tuned
# Two big components sharing this share of the narrower one's columns are stacked: one digit (a 5 and its hat);
# lowered from 0.6 when lone pieces stopped being cut (commit abad1b3), no measure recorded.
STACKED_OVERLAP = 0.4
BROKEN_STROKE_GAP = 0.08  # big components within this share of the tallest height: one stroke broken; not tuned
ONE_DIGIT_ASPECT = 0.8  # ... when together no wider than this per height, the width of one digit; not tuned
SPECK_REACH = 0.15  # a small component this close to a digit belongs to it; farther, it is a speck; not tuned
# A small component over or under a digit (sharing this share of its columns) joins it from twice as far as one
# beside it; not tuned.
SPECK_OVER_OVERLAP = 0.5
MIN_PIECE_PIXELS = 4  # pixels: a group with less ink is noise, too little to be read as a digit; not tuned

# Which pieces are digits, and how wide one digit is (``_digit_sized``, ``_digit_width``).
MARK_HEIGHT_SHARE = 0.35  # a piece shorter than this share of the tallest is a mark (a dash, a dot); not tuned
SINGLE_DIGIT_ASPECT = 1.0  # a piece no wider than tall looks like one digit and gives the digit width; not tuned
# The digit width is at least this share of the tallest piece's height: a row of narrow 1s must not make every 0
# look like two; not tuned.
MIN_DIGIT_WIDTH_SHARE = 0.5

# Where a wide piece may be cut (``_cuts_by_width``, ``cut_lattice``); aspects are widths per the piece's height.
# Cuts are offered to a piece wider than this among other digits (8 % of MNIST digits are): set on 2026-11-26 in
# place of "only when the widths suggest two digits", touching numbers 54.0 -> 57.0 % (reader MLP) and 43.0 ->
# 45.7 % (default model) in benchmarks/reading_accuracy.py (README).
CUT_ASPECT = 1.1
# ... and to a lone piece only when wider than this (1.8 % of MNIST digits are): offering them from 1.1 slowed
# MNIST-sized batches (each offer costs several more model reads) for no gain on single digits (README).
LONE_CUT_ASPECT = 1.3
DIGIT_ASPECT = 0.75  # with no neighbours to measure, a digit is taken to be 3/4 as wide as it is tall; not tuned
# Wider than this (0.5 % of MNIST digits are), a piece is cut at its thinnest column even where two strokes cross
# there; narrower, only through a single stroke, so that a wide 0 is not cut in two; not tuned.
FORCED_CUT_ASPECT = 1.5
CUT_WINDOW_DIVISOR = 5  # a cut is looked for within 1/5 of a digit's width of where even widths put it; not tuned
MAX_DIGITS_PER_PIECE = 8  # the most digits one piece is cut into: the longest synthetic numbers have 8; not tuned
# The lattice's parts (commit fc38506, touching numbers 38 -> 49 % for the lattice as a whole; no value tuned
# alone): a part wider than MAX_PART_ASPECT is not one digit, one narrower than MIN_PART_ASPECT (between two cut
# columns) is a sliver, and one shorter than MIN_PART_HEIGHT_SHARE of the piece a fragment of a digit (the tail
# of a 2, the bar of a 4), however surely the model reads it: digits side by side each fill most of the height.
MAX_PART_ASPECT = 1.25
MIN_PART_ASPECT = 0.15
MIN_PART_HEIGHT_SHARE = 0.6
CUT_SPACING = 2  # pixels: a thin column this close to a cut already taken adds no new reading; not tuned
MAX_CUT_COLUMNS = 18  # candidate cuts per piece: enough for 8 touching digits, few enough to read every part


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
    start_rows, starts, ends = horizontal_runs(mask)
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


def horizontal_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The runs of ink of a 2-D bool mask, row-major: (rows, starts, ends), ends exclusive."""
    height, width = mask.shape
    padded = np.zeros((height, width + 2), bool)
    padded[:, 1:-1] = mask
    # Every run has a start and an end edge on its row; in row-major order they alternate start, end, ...
    edge_rows, edge_columns = np.nonzero(padded[:, 1:] != padded[:, :-1])
    return edge_rows[0::2], edge_columns[0::2], edge_columns[1::2]


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
    big = (heights >= BIG_HEIGHT_SHARE * heights.max()) | (areas >= BIG_AREA_SHARE * areas.max())
    groups: list[list[int]] = []
    group_boxes: list[np.ndarray] = []
    close = BROKEN_STROKE_GAP * heights.max()
    for index in np.flatnonzero(big)[np.argsort(boxes[big, 0], kind="stable")]:
        for number, box in enumerate(group_boxes):
            if _column_overlap(box, boxes[index]) >= STACKED_OVERLAP or _one_digit_apart(box, boxes[index], close):
                groups[number].append(int(index))
                group_boxes[number] = _union_box(box, boxes[index])
                break
        else:
            groups.append([int(index)])
            group_boxes.append(boxes[index].copy())
    reach = SPECK_REACH * heights.max()
    for index in np.flatnonzero(~big):
        distances = [
            _gap(box, boxes[index]) - (reach if _column_overlap(box, boxes[index]) >= SPECK_OVER_OVERLAP else 0)
            for box in group_boxes
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
    return _gap(a, b) <= close and union[2] - union[0] <= ONE_DIGIT_ASPECT * (union[3] - union[1])


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
    """One ``Piece`` per group with at least ``MIN_PIECE_PIXELS`` of ink: the union box and the mask of exactly its
    components.

    ``labels`` is the picture's labels; group indices count from the component labelled ``first_label``.
    Plain lists, not arrays: a picture has a handful of components, where numpy's per-call cost dominates.
    """
    pieces = []
    for group in groups:
        if len(group) == 1:  # most digits: one stroke of ink
            index = group[0]
            if areas[index] >= MIN_PIECE_PIXELS:
                x0, y0, x1, y1 = boxes[index]
                pieces.append(Piece((x0, y0, x1, y1), labels[y0:y1, x0:x1] == first_label + index))
            continue
        if sum(areas[i] for i in group) < MIN_PIECE_PIXELS:
            continue
        x0, y0 = min(boxes[i][0] for i in group), min(boxes[i][1] for i in group)
        x1, y1 = max(boxes[i][2] for i in group), max(boxes[i][3] for i in group)
        pieces.append(Piece((x0, y0, x1, y1), np.isin(labels[y0:y1, x0:x1], np.add(group, first_label))))
    return pieces


def _cuts_by_width(
    piece: Piece,
    digit_width: float | None,
    count: int | None = None,
    profile: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[int]:
    """Where the digit widths say to cut a piece into ``count`` digits (default: as many as fit), as columns of
    the piece, 0 and its width included; no cut: [0, width].

    Each cut is the column near its even-width place (within a fifth of a digit) crossing the fewest strokes,
    then holding the least ink, and is made only through a single stroke (where two digits touch), so a wide 0
    is not cut, unless the piece is wider than ``FORCED_CUT_ASPECT`` heights. None is made in a piece no wider
    than ``CUT_ASPECT`` heights, or ``LONE_CUT_ASPECT`` with no digits beside it to compare (``digit_width``
    None). ``profile``: the piece's ``_column_profile``, when the caller has it.
    """
    if digit_width is None:  # nothing to compare with: only wide pieces (1.8 % of MNIST digits are)
        if piece.width <= LONE_CUT_ASPECT * piece.height and count is None:
            return [0, piece.width]
        digit_width = DIGIT_ASPECT * piece.height
    count = count or int(np.clip(round(piece.width / max(digit_width, 1)), 1, MAX_DIGITS_PER_PIECE))
    if count < 2 or piece.width <= CUT_ASPECT * piece.height:
        return [0, piece.width]
    ink_per_column, strokes_per_column = profile or _column_profile(piece)
    step = piece.width / count
    cuts = [0]
    for i in range(1, count):
        expected = round(i * step)
        window = max(1, round(step / CUT_WINDOW_DIVISOR))
        lo, hi = max(cuts[-1] + 1, expected - window), min(piece.width - 1, expected + window + 1)
        if lo >= hi:
            continue
        columns = np.arange(lo, hi)
        # Fewest strokes crossed, then least ink, then nearest the expected cut.
        order = np.lexsort((np.abs(columns - expected), ink_per_column[lo:hi], strokes_per_column[lo:hi]))
        best = int(columns[order[0]])
        if strokes_per_column[best] <= 1 or piece.width > FORCED_CUT_ASPECT * piece.height:
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
    counts: tuple[int, int] = (2, MAX_DIGITS_PER_PIECE)  # how many digits the piece may hold, fewest and most

    @property
    def last(self) -> int:
        return len(self.columns) - 1


def cut_lattice(piece: Piece, digit_width: float | None) -> CutLattice | None:
    """The candidate cuts of a piece that may be several touching digits (None when it is one digit).

    Offered for a piece wider than ``CUT_ASPECT`` heights among other digits, or ``LONE_CUT_ASPECT`` alone (a
    lone digit is read far more often than a number, and each offer costs the model a few more reads); the
    reader keeps a cutting only where the model reads it better. Candidates are ``_cuts_by_width`` for the
    digit count the widths suggest (at least two), one fewer and one more, and every column where a single
    stroke crosses at a local minimum of ink (where two digits touch), so digits of uneven widths (a 1 beside a
    0) still find their cut; paths may hold 2 to two more digits than suggested.
    """
    if piece.width <= (LONE_CUT_ASPECT if digit_width is None else CUT_ASPECT) * piece.height:
        return None  # as tall as one digit: most pieces stop here, before being measured
    profile = _column_profile(piece)
    # Parts made at the cuts the widths suggest (fewer when a cut is skipped), but at least two: touching
    # digits are often narrow (a 1 beside a 7) and their sum no wider than the digits beside them.
    suggested = max(2, len(_cuts_by_width(piece, digit_width, profile=profile)) - 1)
    columns = {
        c
        for count in (suggested - 1, suggested, suggested + 1)
        if count >= 2
        for c in _cuts_by_width(piece, digit_width, count, profile)
    }
    ink, strokes = profile
    never = np.full(1, np.iinfo(ink.dtype).max, ink.dtype)
    padded = np.concatenate([never, ink, never])  # the ends are never a local minimum
    thin = np.flatnonzero((strokes <= 1) & (ink <= padded[:-2]) & (ink <= padded[2:]))
    thin = [int(c) for c in thin[np.argsort(ink[thin], kind="stable")] if 0 < c < piece.width]
    for column in thin:  # the thinnest first, none within CUT_SPACING pixels of one already taken
        if len(columns) >= MAX_CUT_COLUMNS:
            break
        if all(abs(column - taken) > CUT_SPACING for taken in columns):
            columns.add(column)
    columns = sorted(columns)
    parts = {}
    for i in range(len(columns)):
        for j in range(i + 1, len(columns)):
            width = columns[j] - columns[i]
            if width > MAX_PART_ASPECT * piece.height:
                break
            if width >= MIN_PART_ASPECT * piece.height and (i, j) != (0, len(columns) - 1):
                part = _trimmed(piece, columns[i], columns[j])
                if part is not None and part.height >= MIN_PART_HEIGHT_SHARE * piece.height:  # not a fragment
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
    return [piece for piece in pieces if piece.height >= MARK_HEIGHT_SHARE * tallest]


def _digit_width(pieces: list[Piece]) -> float | None:
    """The width of one digit in this picture, from the pieces that look like one digit (None: too few)."""
    tallest = max(piece.height for piece in pieces)
    single = [piece.width for piece in pieces if piece.width <= SINGLE_DIGIT_ASPECT * piece.height]
    return max(float(np.median(single)), MIN_DIGIT_WIDTH_SHARE * tallest) if len(single) >= 2 else None
