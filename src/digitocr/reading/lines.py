"""Pictures -> the lines of digits in them, each normalised as the line model reads it (no model involved).

The stages find the ink (``candidates.ink_of``); form lines are set aside for finding lines (a horizontal run of
ink far longer than a digit is tall: a ruled line, a comb's edge), the remaining components are grouped into lines
by the rows they share (a line of nothing but an empty comb's ticks is none; a line's box reaches over the pieces
of its digits that a form line cut off), and each line's box of the ink contrast, everything in it included (a
comb's boxes, a ruled line under the digits, specks), is scaled so its ink fills ``LINE_INK_HEIGHT`` of
``LINE_HEIGHT`` rows with ``LINE_SIDE_MARGIN`` columns of paper each side: what ``data.lines`` trains the line
model on.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from digitocr.config import (
    DIGIT_BOX,
    LINE_HEIGHT,
    LINE_INK_HEIGHT,
    LINE_MAX_TILT,
    LINE_SIDE_MARGIN,
    LINE_STRIDE,
    ReadingConfig,
)
from digitocr.reading import stages
from digitocr.reading.candidates import ink_and_crops, input_box, per_stack
from digitocr.reading.segment import (
    MARK_HEIGHT_SHARE,
    MIN_PIECE_PIXELS,
    Components,
    find_components,
    horizontal_runs,
)

# A run of ink longer than this many digit heights is a form line, not a stroke: the longest strokes of a digit
# (a 7's bar, a 5's hat, a 1) are about one height long, two touching digits' joined bars under two; not tuned.
FORM_RUN_HEIGHTS = 2.5
# ... and longer than these shares of the picture: a ruled line runs across the page, a margin down it, where a
# digit height misjudged (digits touching the lines counted with them) would cut digits' own strokes; not tuned.
FORM_ACROSS_SHARE = 0.15
FORM_DOWN_SHARE = 0.5
FORM_TILT_ROWS = 2  # a form line tilted by up to 3 degrees stays one run over 100 pixels once this much thicker
# A form line thin and pale enough loses a pixel or two where another crosses it (a notebook's margin, under each
# pale rule that fell below the threshold), which left a margin's pieces shorter than FORM_DOWN_SHARE: a number
# beside it was then read in one line with a piece, scaled to a fraction of the line's height, and read as nothing
# (14 of 1,000 validation ruled pages, 2026-12-07). A run down is measured across breaks of at most FORM_GAP_PIXELS
# and FORM_GAP_HEIGHTS of a digit, so that no two lines of writing are bridged: they are at least 1.2 digit
# heights apart, 0.2 between their ink; not tuned. Runs across are not: bridged, touching digits' bars joined into
# runs set aside as form lines (validation touching numbers 86.6 -> 84.5 %, combs 87.7 -> 86.4 %, 2026-12-07).
FORM_GAP_PIXELS = 3
FORM_GAP_HEIGHTS = 0.15
FORM_ASPECT = 3.0  # a component wider than this many heights is not one digit: it does not give the digit height
# ... nor does a speck: a component with less ink than this share of the picture's largest that could be a digit.
# Grain and dust are components too, and in a photo of one digit they were most of them: the median was a speck's
# few pixels, so the digit's own strokes, many times longer, were set aside as form lines (a blurred 2's base, a
# 4's stem) and its ink, many times wider than that height, was sheared. Not tuned: grain holds well under 1 % of
# a digit's ink at the working size.
SPECK_INK_SHARE = 0.02
# ... of the largest that does not span this share of the picture both ways: a page's rules joined by its margin are
# one component with a hundred times a digit's ink, which would leave every digit out; not tuned.
FORM_SPAN_SHARE = 0.9
# Components sharing at least this share of the shorter one's rows are on one line; not tuned. Lines of
# handwriting on ruled paper are 1.2-1.6 digit heights apart: neighbours share no rows.
LINE_OVERLAP = 0.5
# Parts stacked above each other (sharing columns) are one line when together no taller than STACKED_UNION
# times the picture's tallest component, and no further apart than STACKED_GAP of it: the halves of a broken 0
# or 8 (together under twice the taller half), a 5's hat. Two lines of writing are at least 2.2 digit heights
# tall together (ruled paper: lines 1.2-1.6 heights apart); not tuned.
STACKED_UNION = 2.0
STACKED_GAP = 0.25
# A line shorter than this (working pixels) is a speck: the smallest digits read are 8 pixels tall here (a number
# 25 pixels tall in a 1200x900 photo, at a 384-pixel working size; 11 at the line reader's 512); not tuned.
MIN_LINE_HEIGHT = 6
# A digit written across a form line (over a comb's top or bottom line, a 7's tail through a ruled line) is cut in two
# when the line is set aside, and the piece beyond it, a loop's top or a tail shorter than a digit's
# MARK_HEIGHT_SHARE, neither starts a line nor stretches one: the line's box ended at the form line and the line model
# read the digit cut off (6 of 8 misread validation combs that had lost a digit, 2026-12-07; on 1,000 validation
# combs, reaching over such pieces read 82.0 -> 87.6 % exactly, no other category moving). A piece beyond a form line
# the line's box reaches, in its columns, with only that form line's ink in every row between, belongs to the line: at
# most FORM_JOIN_ROWS rows between, form lines being 1-4 working pixels thick (the empty combs measured below) and
# FORM_TILT_ROWS more where one is tilted; not tuned.
FORM_JOIN_ROWS = 4 + FORM_TILT_ROWS
# An empty comb (a form's boxes, nothing written) leaves, once its top and bottom lines are set aside, only the
# ticks between its boxes, which the line model reads as 1s (an empty comb read "1111111"). A line is such a comb,
# not writing, when its tall components (at least TICK_TALL_SHARE of the line's height: fragments of the box lines
# and specks do not count) are at least MIN_TICKS bars that each stand on or hang from a form line (within
# TICK_TOUCH_ROWS of its ends), drawn with the comb's pen (at most TICK_WIDTH_RATIO times as wide as the form lines
# are thick, plus a pixel of blur) and evenly spaced (the widest gap at most TICK_GAP_RATIO times the narrowest).
# Written digits break it: a digit that does not touch the box lines is no tick, one that does is wider than a
# tick (but an upright 1 drawn with the same pen), and a digit in a box halves the spacing there. Measured on 56
# empty combs in working pixels (2026-12-03): ticks 2-6 px wide where the box lines are 1-4 px thick (at most
# twice plus one), 5-37 px tall, gaps regular; a 1 written in a box touching its top line 12 px wide; not tuned.
TICK_TALL_SHARE = 0.5
MIN_TICKS = 3
TICK_TOUCH_ROWS = FORM_TILT_ROWS + 1
TICK_WIDTH_RATIO = 2.0
TICK_GAP_RATIO = 1.5
# Photos tilt writing by up to 8-10 degrees, while the line model learns lines tilted by at most 3 (``data.lines``)
# and a form line tilted past 3 degrees breaks into runs the form-line rule does not see. So a picture's ink is
# sheared straight first: by the shear (rows per column, within MAX_SKEW_DEGREES, in SKEW_STEP_DEGREES steps) under
# which its rows' ink counts are most uneven (the sum of their squares: baselines, ruled lines and a comb's edges
# line up), when that is more than a step past the tilt the line model learned (``LINE_MAX_TILT``: lines it was
# trained on come back as they were drawn, tests/test_reading_lines.py); and only where the ink is at least
# SKEW_ASPECT times wider than its digits are tall (lines of three or more digits), as a single digit's own shape
# would set the angle. A vertical shear, not a rotation: columns stay where they are, so a digit's box maps back by
# its columns' shifts. Measured with the shipped line reader (benchmarks/reading_accuracy.py, 300 pictures,
# 2026-12-03): numbers 87.0 -> 91.3 %, touching 77.7 -> 82.7 %, several lines 83.3 -> 90.0 %, no digits 94.0 -> 95.0
# %; gating on the ink's own aspect instead kept several lines at 84.3 % (stacked lines are tall), and shearing
# every picture lost single digits and tight crops 0.6-2.3 points.
MAX_SKEW_DEGREES = 10.0
SKEW_STEP_DEGREES = 0.5
MIN_SKEW = np.tan(np.arctan(LINE_MAX_TILT) + np.radians(SKEW_STEP_DEGREES))
SKEW_ASPECT = 2.0
# Ink pixels the shear is judged on, at most (an even sample of them), so that a page full of ink costs about what
# a number does (a number photo holds about 1,300 at the working size: all of them count). Measured 2026-12-03: a
# sample of 500 cost a number photo 0.3 ms less and read 0.3-1 point fewer numbers, touching, combs and several
# lines exactly than all of them.
SKEW_PIXELS = 2_000
SKEW_EXTENT_TAIL = 0.02  # the ink's extent leaves out this share of it at each end: specks, a shadow at the edge
SHEARS = np.tan(np.radians(np.arange(-MAX_SKEW_DEGREES, MAX_SKEW_DEGREES + SKEW_STEP_DEGREES / 2, SKEW_STEP_DEGREES)))
# A line whose strokes are thicker than the thickest MNIST digits' (``ReadingConfig.max_stroke`` in the 20-pixel
# digit box, scaled to the line's ink height) is a blob or a smear, not writing.
STROKE_SCALE = LINE_INK_HEIGHT / DIGIT_BOX
STROKE_LEVEL = 0.5  # a line pixel this dark is stroke when measuring the stroke width (as for 28x28 digits)
TOP_MARGIN = (LINE_HEIGHT - LINE_INK_HEIGHT) / 2  # rows of paper above (and below) a line's ink, normalised


@dataclass
class FoundLine:
    """A line of digits: where its ink lies in the working image and the picture the line model reads."""

    picture: int  # which picture of the batch
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (end exclusive) of its ink in working pixels
    image: np.ndarray  # (LINE_HEIGHT, width) float32 in [0, 1], width a multiple of LINE_STRIDE
    scale: float  # line pixels per working pixel
    mask: np.ndarray  # bool (y1 - y0, x1 - x0): its ink, for the digits' boxes
    mapping: tuple[float, float, int]  # working image -> input picture (``images.load_working``)
    stroke: float = 0.0  # mean stroke width in ``image`` (pixels)
    shear: float = 0.0  # the picture's ink was sheared straight: working row y at column x came from y + shift(x)
    centre: float = 0.0  # the working image's middle column, which the shear's rounding is reckoned from
    turn: float = 0.0  # the working column the shear leaves in place
    # A tight crop's ink in the other polarity than the stages chose (``candidates.ink_and_crops``): its lines are
    # a second reading of the picture, of which the line reader keeps the surer (``transcribe.read_lines``).
    flipped: bool = False

    def shift(self, x: int) -> int:
        """Rows the shear moved column x of the working image up by (``straightened``)."""
        return int(column_shifts(np.array([self.shear]), np.array([x]), self.centre, np.array([self.turn]))[0, 0])

    def working_columns(self, first: int, last: int) -> tuple[int, int]:
        """Output columns first..last (inclusive) -> the working columns [x0, x1) they cover, within the ink."""
        x0 = self.box[0] + (first * LINE_STRIDE - LINE_SIDE_MARGIN) / self.scale
        x1 = self.box[0] + ((last + 1) * LINE_STRIDE - LINE_SIDE_MARGIN) / self.scale
        return max(self.box[0], int(np.floor(x0))), min(self.box[2], int(np.ceil(x1)))

    def input_box(self, first: int, last: int) -> tuple[int, int, int, int]:
        """The box (x, y, w, h, input picture pixels) of the ink in output columns first..last."""
        x0, x1 = self.working_columns(first, last)
        rows = np.flatnonzero(self.mask[:, x0 - self.box[0] : x1 - self.box[0]].any(1))
        y0, y1 = (self.box[1] + rows[0], self.box[1] + rows[-1] + 1) if rows.size else self.box[1::2]
        shifts = self.shift(x0), self.shift(max(x1 - 1, x0))  # back to the picture's rows: the box of the sheared box
        return input_box((x0, y0 + min(shifts), max(x1, x0 + 1), y1 + max(shifts)), self.mapping)


def find_lines_loaded(loaded: list[tuple[np.ndarray, tuple]], config: ReadingConfig) -> list[list[FoundLine]]:
    """``load_working_many``'s working images and mappings -> the lines of each, top to bottom."""
    found = per_stack(loaded, lambda greys, mappings: lines_in(greys, mappings, config))
    for picture, lines in enumerate(found):
        for line in lines:
            line.picture = picture
    return found


def lines_in(greys: np.ndarray, mappings: list, config: ReadingConfig) -> list[list[FoundLine]]:
    """A stack of working images (N, H, W) -> each one's lines, top to bottom; a tight crop's, read in both
    polarities, those of the other polarity after them (``FoundLine.flipped``)."""
    lines, crops = _lines_and_crops(greys, mappings, config)
    if crops.any():
        picked = np.flatnonzero(crops)
        other, _ = _lines_and_crops(greys[picked], [mappings[i] for i in picked], config, flip_crops=True)
        for picture, flipped in zip(picked, other):
            for line in flipped:
                line.picture, line.flipped = int(picture), True
            lines[picture] += flipped
    return lines


def _lines_and_crops(
    greys: np.ndarray, mappings: list, config: ReadingConfig, flip_crops: bool = False
) -> tuple[list[list[FoundLine]], np.ndarray]:
    """``lines_in`` in the polarity the stages chose, and which pictures were tight crops; ``flip_crops``: the
    pictures are tight crops, read in the other polarity (``candidates.ink_and_crops``)."""
    contrast, mask, crops = ink_and_crops(greys, config, flip_crops)
    components = find_components(mask)
    heights = digit_heights(components, len(greys))
    shears = skews(mask, heights)
    turns = np.zeros(len(greys))  # where nothing is sheared, any column will do
    if shears.any():
        turns = ink_centres(mask)
        contrast, mask = straightened(contrast, shears, turns), straightened(mask, shears, turns)
        components = find_components(mask)
        heights = digit_heights(components, len(greys))
    writing = without_form_lines(mask, heights)
    if not np.array_equal(writing, mask):
        components = find_components(writing)
    form = mask & ~writing
    found: list[tuple[int, tuple[int, int, int, int]]] = []
    for picture in range(len(greys)):
        mine = np.flatnonzero(components.pictures == picture)
        areas = components.areas[mine]
        pieces = areas >= MIN_PIECE_PIXELS
        boxes = components.boxes[mine][pieces].tolist()
        # A picture its ink fills (a tight crop, read on a frame) is one digit or one number: its pieces are one
        # line, however its threshold broke it (a 7's bar apart from its stem, a 5's loops taken for two lines).
        one_line = _one_line(boxes, areas[pieces]) if crops[picture] else []
        grouped = one_line or [
            across_form_lines(box, boxes, heights[picture], form[picture])
            for box in group_lines(boxes, heights[picture])
        ]
        found += [
            (picture, box)
            for box in grouped
            if box[3] - box[1] >= MIN_LINE_HEIGHT and not empty_comb(box, boxes, form[picture])
        ]
    lines: list[list[FoundLine]] = [[] for _ in greys]
    for line in normalise_lines(contrast, writing, found, mappings):
        if plausible_line(line, config):
            line.shear, line.centre = float(shears[line.picture]), (greys.shape[2] - 1) / 2
            line.turn = float(turns[line.picture])
            lines[line.picture].append(line)
    return lines, crops


def skews(mask: np.ndarray, digit_heights: np.ndarray) -> np.ndarray:
    """Each mask's (N, H, W) tilt as the shear (rows per column) that straightens it, 0 where it needs none
    (``MIN_SKEW``; ``SKEW_ASPECT`` times its digits' height, or its ink's where none is digit-like). Searched
    coarse to fine: every other step of ``SHEARS``, then the steps either side of the best (the evenness of the
    rows changes smoothly with the angle), half the work."""
    count, height, width = mask.shape
    shears = np.zeros(count)
    wide = _ink_extent(mask.sum(1))
    tall = np.where(digit_heights > 0, digit_heights, _ink_extent(mask.sum(2)))
    for picture in np.flatnonzero((tall > 0) & (wide >= SKEW_ASPECT * tall)):
        ys, xs = np.nonzero(mask[picture])
        every = -(-len(ys) // SKEW_PIXELS)  # a spread sample of the ink is enough to rank the shears
        ys, xs = ys[::every], xs[::every] - (width - 1) / 2
        coarse = np.arange(0, len(SHEARS), 2)
        best = coarse[_row_evenness(ys, xs, SHEARS[coarse], height).argmax()]
        fine = np.array([i for i in (best - 1, best, best + 1) if 0 <= i < len(SHEARS)])
        shear = SHEARS[fine[_row_evenness(ys, xs, SHEARS[fine], height).argmax()]]
        shears[picture] = shear if abs(shear) >= MIN_SKEW else 0.0
    return shears


def _row_evenness(ys: np.ndarray, xs: np.ndarray, shears: np.ndarray, height: int) -> np.ndarray:
    """For each shear, the sum of squared ink counts of the rows of ink (ys, xs from the middle column) sheared by
    it: highest where the writing's rows line up."""
    reach = int(np.ceil(np.abs(shears).max() * np.abs(xs).max())) + 1  # how far a shear moves a row
    rows = np.round(ys[None] - shears[:, None] * xs[None]).astype(np.int64) + reach
    rows += np.arange(len(shears))[:, None] * (height + 2 * reach)  # each shear's rows apart
    counts = np.bincount(rows.ravel(), minlength=len(shears) * (height + 2 * reach)).astype(np.float64)
    return (counts.reshape(len(shears), -1) ** 2).sum(1)


def _ink_extent(counts: np.ndarray) -> np.ndarray:
    """Ink counts per row (or column) of each picture (N, L) -> how many rows hold the middle ``1 - 2 *
    SKEW_EXTENT_TAIL`` of its ink (0 for none): its extent, blind to specks and a shadow at the edge."""
    total = counts.sum(1, keepdims=True)
    share = np.cumsum(counts, 1) / np.maximum(total, 1)
    first, last = (share > SKEW_EXTENT_TAIL).argmax(1), (share >= 1 - SKEW_EXTENT_TAIL).argmax(1)
    return np.where(total[:, 0] > 0, last - first + 1, 0)


def ink_centres(mask: np.ndarray) -> np.ndarray:
    """The column of each mask (N, H, W) that a shear leaves in place: its ink's mean column (the middle one where
    it has none). Turning about the picture's middle moved a number near a side of a wide photo by up to the shear
    times half the width, out of the picture: 5 of 1,000 validation numbers small in a photo read as nothing
    (2026-12-07)."""
    counts = mask.sum(1)  # (N, W) ink per column
    total = counts.sum(1)
    middle = (mask.shape[2] - 1) / 2
    return np.where(total > 0, (counts * np.arange(mask.shape[2])).sum(1) / np.maximum(total, 1), middle)


def column_shifts(shears: np.ndarray, columns: np.ndarray, centre: float, turns: np.ndarray) -> np.ndarray:
    """(N, C) rows each column moves by under each shear, rounded as about the picture's middle column ``centre``,
    less what the shear moves each picture's ``turns`` column (``ink_centres``): the ink stays where it was, and
    the steps of the rounding fall where they did before the turn was moved (moving them alone changed 1-4 % of
    numbers' readings both ways, validation combs and colour photos lost more than they gained). One rounding for
    the images and their boxes alike (``straightened``, ``FoundLine.shift``)."""
    shifts = np.round(shears[:, None] * (columns[None, :] - centre))
    return (shifts - np.round(shears * (turns - centre))[:, None]).astype(np.int64)


def straightened(images: np.ndarray, shears: np.ndarray, turns: np.ndarray) -> np.ndarray:
    """Images (N, H, W) sheared by ``shears`` (rows per column), each ``turns`` column staying in place
    (``column_shifts``): row y of column x comes from row y + shift(x); what comes from beyond the picture is
    paper (0)."""
    if not shears.any():
        return images
    height, width = images.shape[1:]
    shifts = column_shifts(shears, np.arange(width), (width - 1) / 2, turns)
    rows = np.arange(height)[None, :, None] + shifts[:, None, :]
    inside = (rows >= 0) & (rows < height)
    moved = np.take_along_axis(images, rows.clip(0, height - 1), 1)
    return np.where(inside, moved, np.zeros((), images.dtype))


def across_form_lines(
    line: tuple[int, int, int, int], boxes: list[list[int]], digit_height: float, form: np.ndarray
) -> tuple[int, int, int, int]:
    """A line's box stretched over the marks (``is_mark``) that a form line cut off its digits
    (``FORM_JOIN_ROWS``), given the picture's component boxes, digit height and form lines (H, W) set aside."""
    x0, y0, x1, y1 = line
    for a, b, c, d in boxes:
        if not is_mark((a, b, c, d), digit_height) or min(c, x1) <= max(a, x0):
            continue  # a piece that starts lines of its own, or not in the line's columns
        if d <= y0:
            between = form[d:y0, a:c]  # the rows between the piece above and the line
        elif b >= y1:
            between = form[y1:b, a:c]
        else:
            continue  # in the line's rows already
        if 1 <= len(between) <= FORM_JOIN_ROWS and between.any(1).all():
            y0, y1 = min(y0, b), max(y1, d)
    return x0, y0, x1, y1


def empty_comb(line: tuple[int, int, int, int], boxes: list[list[int]], form: np.ndarray) -> bool:
    """Whether a line (its box) of one picture's component boxes is only the ticks of an empty comb, given the
    picture's form lines (H, W) set aside (``TICK_TALL_SHARE`` and the rest)."""
    x0, y0, x1, y1 = line
    inside = [box for box in boxes if box[0] >= x0 and box[2] <= x1 and box[1] >= y0 and box[3] <= y1]
    tall = sorted(box for box in inside if box[3] - box[1] >= TICK_TALL_SHARE * (y1 - y0))
    if len(tall) < MIN_TICKS:
        return False
    rows = form.shape[0]
    for a, b, c, d in tall:
        above, below = form[max(0, b - TICK_TOUCH_ROWS) : b, a:c], form[d : min(rows, d + TICK_TOUCH_ROWS), a:c]
        if not (above.any() or below.any()):
            return False
    _, starts, ends = horizontal_runs(np.ascontiguousarray(form.T))  # the form lines' runs down: their thickness
    widest = TICK_WIDTH_RATIO * np.median(ends - starts) + 1
    gaps = np.diff([(a + c) / 2 for a, _, c, _ in tall])
    return bool(max(c - a for a, _, c, _ in tall) <= widest and gaps.max() <= TICK_GAP_RATIO * gaps.min())


def plausible_line(line: FoundLine, config: ReadingConfig) -> bool:
    """Whether a found line could be writing at all, before asking the model (``STROKE_SCALE``)."""
    return line.stroke <= config.max_stroke * STROKE_SCALE


def digit_heights(components: Components, pictures: int) -> np.ndarray:
    """Each picture's typical digit height (pixels): the median height of its components that could be one digit
    (0 where none could), specks left out (``SPECK_INK_SHARE``)."""
    boxes, areas = components.boxes, components.areas
    height, width = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
    digit_like = (areas >= MIN_PIECE_PIXELS) & (width <= FORM_ASPECT * height)
    # The speck scale is set by a digit, not by what spans the picture: a ruled page's grid or a tight crop's digit.
    rows, columns = components.labels.shape[1:]
    spans = (height >= FORM_SPAN_SHARE * rows) & (width >= FORM_SPAN_SHARE * columns)
    largest = np.zeros(pictures, np.int64)
    np.maximum.at(largest, components.pictures[digit_like & ~spans], areas[digit_like & ~spans])
    digit_like &= areas >= SPECK_INK_SHARE * largest[components.pictures]
    found = np.zeros(pictures)
    for picture in np.unique(components.pictures[digit_like]):
        found[picture] = np.median(height[digit_like & (components.pictures == picture)])
    return found


def without_form_lines(mask: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """The masks (N, H, W) without their form lines: runs of ink longer than ``FORM_RUN_HEIGHTS`` digit heights and
    than ``FORM_ACROSS_SHARE`` of the picture's width (ruled lines, a comb's edges), then, with the digit height
    measured again on what is left, runs down longer than ``FORM_DOWN_SHARE`` of its height (a notebook's margin),
    across breaks where another form line crossed it (``FORM_GAP_PIXELS``). Each run is measured on the mask
    thickened by ``FORM_TILT_ROWS``, so a slightly tilted line is one run."""
    width, height = mask.shape[2], mask.shape[1]
    across = _long_runs(mask, np.maximum(FORM_RUN_HEIGHTS * heights, FORM_ACROSS_SHARE * width))
    writing = mask if across is None else mask & ~across
    # Digits touching a ruled line were part of its component: their height is measured once it is gone.
    heights = digit_heights(find_components(writing), len(mask)) if across is not None else heights
    gaps = np.minimum(FORM_GAP_PIXELS, FORM_GAP_HEIGHTS * heights)
    down = _long_runs(
        writing.transpose(0, 2, 1), np.maximum(FORM_RUN_HEIGHTS * heights, FORM_DOWN_SHARE * height), gaps
    )
    return writing if down is None else writing & ~down.transpose(0, 2, 1)


def _long_runs(mask: np.ndarray, limits: np.ndarray, gaps: np.ndarray | None = None) -> np.ndarray | None:
    """Where the masks (N, H, W) hold a horizontal run longer than each picture's limit (pixels) once thickened by
    ``FORM_TILT_ROWS`` rows, breaks of at most each picture's ``gaps`` (pixels) bridged (None: nowhere)."""
    count, height, width = mask.shape
    thick = mask.copy()
    for shift in range(1, FORM_TILT_ROWS + 1):
        thick[:, shift:] |= mask[:, :-shift]
        thick[:, :-shift] |= mask[:, shift:]
    flat = thick.reshape(count * height, width)
    rows, starts, ends = horizontal_runs(flat)
    if gaps is not None and len(rows):
        # Runs of a row are in order: a run starts a new stretch where the row changes or the gap before it is wider.
        fresh = np.ones(len(rows), bool)
        fresh[1:] = (rows[1:] != rows[:-1]) | (starts[1:] - ends[:-1] > gaps[rows[1:] // height])
        firsts = np.flatnonzero(fresh)
        lasts = np.append(firsts[1:], len(rows)) - 1
        rows, starts, ends = rows[firsts], starts[firsts], ends[lasts]
    long = (ends - starts) > limits[rows // height]
    if not long.any():
        return None
    form = np.zeros_like(flat)
    for row, start, end in zip(rows[long], starts[long], ends[long]):
        form[row, start:end] = True
    return form.reshape(mask.shape) & mask  # only the ink itself: the thickening only joined its pieces


def is_mark(box: list[int] | tuple[int, ...], digit_height: float) -> bool:
    """Whether a component (its box x0, y0, x1, y1) is a mark, shorter than ``MARK_HEIGHT_SHARE`` of a digit: it
    neither starts a line nor stretches one (``group_lines``) unless a form line cut it off (``across_form_lines``)."""
    return box[3] - box[1] < MARK_HEIGHT_SHARE * digit_height


def group_lines(boxes: list[list[int]], digit_height: float) -> list[tuple[int, int, int, int]]:
    """Component boxes (x0, y0, x1, y1) of one picture -> the boxes of its lines, top to bottom.

    Components shorter than ``MARK_HEIGHT_SHARE`` of a digit (dots, dashes, specks) neither start a line nor
    stretch one; they are read inside the line they lie in."""
    tall = [box for box in boxes if not is_mark(box, digit_height)]
    lines: list[list[int]] = []
    for box in sorted(tall, key=lambda box: (box[1] + box[3]) / 2):
        for line in lines:
            shared = min(line[3], box[3]) - max(line[1], box[1])
            if shared >= LINE_OVERLAP * min(line[3] - line[1], box[3] - box[1]):
                line[:] = [min(line[0], box[0]), min(line[1], box[1]), max(line[2], box[2]), max(line[3], box[3])]
                break
        else:
            lines.append(list(box))
    tallest = max((box[3] - box[1] for box in tall), default=0)
    return [tuple(line) for line in sorted(_join_stacked(lines, tallest), key=lambda line: line[1])]


def _one_line(boxes: list[list[int]], areas: np.ndarray) -> list[tuple[int, int, int, int]]:
    """A tight crop's pieces as one line: the box around them, specks left out (``SPECK_INK_SHARE``); none (``[]``)
    where there are no pieces. A crop holding two lines is read as one: a height limit that told them apart (twice
    the tallest piece) also split broken digits, and gave back most of what this rule gained on validation pictures
    of tight crops and of no digits."""
    if not boxes:
        return []
    kept = np.array(boxes)[areas >= SPECK_INK_SHARE * areas.max()]
    return [(int(kept[:, 0].min()), int(kept[:, 1].min()), int(kept[:, 2].max()), int(kept[:, 3].max()))]


def _join_stacked(lines: list[list[int]], tallest: int) -> list[list[int]]:
    """Join lines that are parts of one (``STACKED_UNION``, ``STACKED_GAP``)."""
    joined = True
    while joined:
        joined = False
        for i, j in itertools.combinations(range(len(lines)), 2):
            a, b = lines[i], lines[j]
            gap = max(a[1] - b[3], b[1] - a[3])
            union = max(a[3], b[3]) - min(a[1], b[1])
            shares_columns = min(a[2], b[2]) > max(a[0], b[0])
            if shares_columns and gap <= STACKED_GAP * tallest and union <= STACKED_UNION * tallest:
                lines[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                del lines[j]
                joined = True
                break
    return lines


def _resampling(starts, steps, counts, total: int, shrinking: np.ndarray, size: int) -> np.ndarray:
    """(M, size, total) weights resampling one axis: output pixel i of line m covers source [start + i * step,
    start + (i + 1) * step) (continuous coordinates, pixels past ``counts[m]`` zero). Shrinking, each source
    pixel counts by how much of it the output pixel covers (an exact box filter); enlarging, a triangle of one
    source pixel (bilinear), as Pillow resamples; beyond the picture's edge, only the pixels there are count."""
    starts, steps = starts[:, None, None], steps[:, None, None]
    low = starts + np.arange(size)[None, :, None] * steps  # (M, size, 1)
    # Only a band of source pixels can weigh in an output pixel: from the one before its start to the one past its
    # end (the triangle's reach included), so the weights are computed on that band, not across the whole axis
    # (the dense computation was as costly as the line model's pass on a number photo, 2026-12-03).
    band = int(np.ceil(steps.max(initial=0))) + 3
    # (M, size, band): the source pixels of each output pixel's band; pixel j spans [j, j + 1)
    source = np.floor(low).astype(np.int64) - 1 + np.arange(band)[None, None, :]
    covered = np.clip(np.minimum(low + steps, source + 1) - np.maximum(low, source), 0, None)
    triangle = np.clip(1 - np.abs(source + 0.5 - (low + steps / 2)), 0, None)
    weights = np.where(shrinking[:, None, None], covered, triangle)
    weights *= (np.arange(size)[None, :, None] < counts[:, None, None]) & (source >= 0) & (source < total)
    total_weight = weights.sum(2, keepdims=True)
    weights /= np.where(total_weight > 0, total_weight, 1)
    dense = np.zeros((len(starts), size, total), np.float32)
    kept = weights > 0
    lines, outputs, _ = np.nonzero(kept)
    dense[lines, outputs, source[kept]] = weights[kept]
    return dense


def normalise_lines(
    contrast: np.ndarray, mask: np.ndarray, found: list[tuple[int, tuple[int, int, int, int]]], mappings: list
) -> list[FoundLine]:
    """Lines (picture, ink box) of a stack's contrast (N, H, W) -> the line model's inputs, all in one batch: ink
    rows scaled to ``LINE_INK_HEIGHT``, ``LINE_SIDE_MARGIN`` columns each side, strokes scaled so their typical
    pixel reaches 1. Resampling as two matrix products per batch (``_resampling``)."""
    if not found:
        return []
    pictures = np.array([picture for picture, _ in found])
    x0, y0, x1, y1 = np.array([box for _, box in found], np.int64).T
    scale = LINE_INK_HEIGHT / np.maximum(1, y1 - y0)
    widths = (np.ceil(((x1 - x0) * scale + 2 * LINE_SIDE_MARGIN) / LINE_STRIDE) * LINE_STRIDE).astype(np.int64)
    height, width = contrast.shape[1:]
    # The source rectangle the output covers, margins included, in working pixels (continuous coordinates).
    left, top = x0 - LINE_SIDE_MARGIN / scale, y0 - TOP_MARGIN / scale
    shrinking = scale < 1
    rows = _resampling(top, 1 / scale, np.full(len(found), LINE_HEIGHT), height, shrinking, LINE_HEIGHT)
    columns = _resampling(left, 1 / scale, widths, width, shrinking, int(widths.max()))
    images = np.matmul(np.matmul(rows, contrast[pictures]), columns.transpose(0, 2, 1))  # (M, 32, W)
    # Each line's stroke level: the median contrast of its own ink.
    ys, xs = np.arange(height)[None, :, None], np.arange(width)[None, None, :]
    inside = (ys >= y0[:, None, None]) & (ys < y1[:, None, None]) & (xs >= x0[:, None, None]) & (xs < x1[:, None, None])
    ink = (mask[pictures] & inside).reshape(len(found), -1)
    level = np.where(ink.any(1), stages.masked_median(contrast[pictures].reshape(len(found), -1), ink), 1.0)
    images = np.clip(images / np.maximum(level, 1e-6)[:, None, None], 0, 1).astype(np.float32)
    strokes = stages.stroke_width(images > STROKE_LEVEL)  # padding is paper: it adds no stroke
    return [
        FoundLine(
            int(picture),
            (int(a), int(b), int(c), int(d)),
            images[k, :, : widths[k]],
            float(scale[k]),
            mask[picture, b:d, a:c],
            mappings[picture],
            float(strokes[k]),
        )
        for k, (picture, a, b, c, d) in enumerate(zip(pictures, x0, y0, x1, y1))
    ]
