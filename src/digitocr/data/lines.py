"""Lines of handwritten digits made on the fly from MNIST glyphs, as whole batches of tensors: the line model's
training, validation and test data.

A batch of lines is drawn in three passes over the whole batch, never per line: glyphs are placed on a canvas
(one ``grid_sample`` per digit position: scale, slant, baseline jitter, spacing from clear gaps to overlaps, or
one digit per box of a form's comb, a share over its lines), what pictures bring that MNIST lacks is added (comb
boxes with full or short dividers, ruled lines, thicker or thinner strokes, specks, breaks), and each line is
normalised as the reader normalises a line it found (``reading.lines``): the rows of its ink, ruled lines and a
comb's top and bottom lines aside, scaled to ``LINE_INK_HEIGHT`` of ``LINE_HEIGHT`` rows, ``LINE_SIDE_MARGIN``
columns of paper each side, width as it comes; then low resolution, blur and noise. Lines from one split use that
split's digits only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from digitocr.config import (
    IMAGE_SIZE,
    LINE_HEIGHT,
    LINE_INK_HEIGHT,
    LINE_MAX_TILT,
    LINE_SIDE_MARGIN,
    LINE_STRIDE,
    LinesConfig,
)
from digitocr.data.memory import Split

# --- the canvas glyphs are placed on, in MNIST pixels (a digit about 20 tall) ----------------------------------
CANVAS_HEIGHT = 48  # room for the tallest glyph (28 * 1.2 = 34) with its baseline jitter and a comb around it
CANVAS_MARGIN = 8  # pixels left of the first glyph and right of the last
GLYPH_WINDOW = 56  # canvas columns drawn per glyph: 28 * 1.2 wide, slanted by 0.38 over 34 rows, with room
INK_LEVEL = 0.1  # a canvas pixel above this is ink when a line's extent is measured (MNIST's anti-aliased edge)
DIGIT_HEIGHT = 20.0  # MNIST's digit box: spacing and form lines are measured in it

# --- how glyphs vary (drawn uniformly in the ranges) ----------------------------------------------------------
LINE_SCALE = (0.8, 1.2)  # one writer's size per line...
GLYPH_SCALE = (0.9, 1.1)  # ... and each digit's own
LINE_SLANT = (-0.3, 0.3)  # shear of a line's writing (x per y): upright to a strong italic
GLYPH_SLANT = (-0.08, 0.08)
GLYPH_TURN = (-0.1, 0.1)  # each digit's own rotation, radians (about 6 degrees): hands do not keep one angle
BASELINE_JITTER = 2.0  # pixels up or down per digit
LINE_TILT = (-LINE_MAX_TILT, LINE_MAX_TILT)  # slope of the whole line: up to 3 degrees either way
# Spacing between neighbours' ink, in digit heights, by kind of line: overlapping (neighbours cross: the
# touching numbers the rule-based cutter read at 53-57 %), tight (touching or nearly) and clear gaps.
SPACINGS = ((-0.3, 0.0), (-0.05, 0.15), (0.1, 0.7))
MIN_ADVANCE = 7.0  # pixels from one digit's left ink to the next: two output columns at least, as CTC needs

# --- what pictures bring (shares of lines) -------------------------------------------------------------------
COMB_SHARE = 0.15  # digits written one per box of a form's comb
COMB_PITCH = (1.1, 1.6)  # box width in digit heights
COMB_REACH = (1.0, 5.0)  # pixels the boxes reach above and below the digits' ink
COMB_OFFSET = (-0.25, 0.25)  # a digit off its box's centre, in box widths: at the edges it touches or crosses the box
# ... and up or down, in digit heights: most digits sit in their box, a share of hurried ones over its top or
# bottom line (a box is 1.1-1.5 digit heights tall, so 0.4 crosses it).
COMB_CROSS_SHARE = 0.25
COMB_LIFT, COMB_CROSS_LIFT = (-0.08, 0.08), (-0.4, 0.4)
# Forms divide their boxes by full-height lines or by short ticks rising from the bottom line: the tick's share of
# the box's height, for the lines with short ticks.
SHORT_TICK_SHARE = 0.5
SHORT_TICK = (0.3, 0.9)
RULED_SHARE = 0.15  # a ruled line under the digits (and one a line's height above)
RULED_BELOW = (-1.0, 3.0)  # pixels from the lowest ink to the ruled line (negative: the digits cross it)
FORM_LINE_INK = (0.3, 1.0)  # contrast of box and ruled lines after the stages: faint print to dark
THICKEN_SHARE = 0.2  # strokes one pixel bolder (marker, a photo's blur)
THIN_SHARE = 0.15  # ... or thinner (a fine pen)
SPECK_SHARE = 0.2  # dust and dots the stages kept
JUNK_SHARE = 0.4  # of the blank lines: a texture or grain instead of nothing
MAX_SPECKS = 4
BREAK_SHARE = 0.1  # strokes broken by a paper's grain or a dry pen
# Seen at a low resolution: a small number in a photo, a small scan (UCI's 8x8 digits are about 4x), enlarged.
# A quarter of the lines at 2x and 3x read UCI's scans at 75 % (21 % rejected as not writing): more and coarser.
LOW_RESOLUTION_SHARE = 0.4
LOW_RESOLUTION_FACTORS = (2.0, 3.0, 4.0)  # shrunk by one of these and enlarged back
BLUR_SHARE = 0.15
NOISE_SHARE = 0.3
NOISE_SIGMA = 0.06  # at most: paper texture the stages leave in the contrast
SATURATION_MASK_SHARE = 0.3  # the stages' threshold: ``stages.THRESHOLD_INK_SHARE`` of a picture's ink level


@dataclass
class LineBatch:
    """Lines of digits as the line model reads them, and what each shows."""

    images: Tensor  # (N, 1, LINE_HEIGHT, W) float32 in [0, 1], ink high; W a multiple of LINE_STRIDE
    widths: Tensor  # (N,) int64: columns of each line's own picture (the rest is padding)
    targets: Tensor  # (sum of lengths,) int64: the digits of all lines, concatenated
    lengths: Tensor  # (N,) int64: digits per line
    indices: Tensor  # (N, max_digits) int64: the split's image drawn in each position (-1: none)
    spans: Tensor  # (N, max_digits, 2) float32: each digit's ink columns [left, right) in ``images``
    combs: Tensor  # (N,) bool: written in a comb of boxes
    ruled: Tensor  # (N,) bool: on ruled paper

    def __len__(self) -> int:
        return len(self.lengths)

    def texts(self) -> list[str]:
        digits, texts, start = self.targets.tolist(), [], 0
        for length in self.lengths.tolist():
            texts.append("".join(map(str, digits[start : start + length])))
            start += length
        return texts

    def to(self, device: torch.device | str) -> LineBatch:
        return LineBatch(*(getattr(self, name).to(device) for name in self.__dataclass_fields__))

    @classmethod
    def joined(cls, batches: list[LineBatch]) -> LineBatch:
        """Batches drawn with one config as one, their images padded to the widest."""
        width = max(batch.images.shape[-1] for batch in batches)
        images = [F.pad(batch.images, (0, width - batch.images.shape[-1])) for batch in batches]
        fields = {
            name: torch.cat([getattr(batch, name) for batch in batches])
            for name in cls.__dataclass_fields__
            if name != "images"
        }
        return cls(images=torch.cat(images), **fields)

    def select(self, rows: Tensor) -> LineBatch:
        """These lines (a non-empty tensor of indices), their images cut to the widest of them."""
        per_line = torch.split(self.targets, self.lengths.tolist())
        digits = torch.cat([per_line[row] for row in rows.tolist()])
        width = int(self.widths[rows].max())
        per_row = {
            name: getattr(self, name)[rows] for name in self.__dataclass_fields__ if name not in ("images", "targets")
        }
        return LineBatch(images=self.images[rows, ..., :width], targets=digits, **per_row)


def make_lines(split: Split, count: int, config: LinesConfig, generator: torch.Generator) -> LineBatch:
    """``count`` random lines of ``config.min_digits`` to ``config.max_digits`` digits from ``split``'s images."""
    return make_lines_of(split, _lengths(count, config, generator), config, generator)


def make_lines_of(split: Split, lengths: Tensor, config: LinesConfig, generator: torch.Generator) -> LineBatch:
    """One random line of ``lengths[i]`` digits (at most ``config.max_digits``) from ``split``'s images per entry."""
    count = len(lengths)
    slots = config.max_digits
    valid = torch.arange(slots)[None] < lengths[:, None]  # (N, L)
    indices = torch.randint(len(split), (count, slots), generator=generator)
    glyphs = split.images[indices.flatten()].float().view(count, slots, IMAGE_SIZE, IMAGE_SIZE)
    combs = torch.rand(count, generator=generator) < COMB_SHARE
    ruled = (torch.rand(count, generator=generator) < RULED_SHARE) & ~combs
    layout = _layout(glyphs, valid, combs, generator)
    width = int(layout.right.max().ceil())
    digits = _strokes(_place(glyphs, valid, layout, width), generator)
    ticks, comb_lines = _comb(layout, valid, combs, width, generator)
    # What the line finder measures a line by: its digits, and a comb's ticks, not its top and bottom lines, which
    # it sets aside as form lines (``reading.lines``).
    extent = torch.maximum(torch.maximum(digits, ticks), _junk(lengths == 0, width, generator))
    canvas = torch.maximum(torch.maximum(extent, comb_lines), _specks(layout, width, generator))
    canvas = torch.maximum(canvas, _ruled(layout, valid, ruled, width, generator))
    canvas, extent = _tilted(torch.cat([canvas, extent], 1), generator).split(1, dim=1)
    images, widths, scale, shift = _normalise(canvas, extent, layout)
    images = _degrade(images, widths, generator)
    ink_left = layout.left * scale[:, None] + shift[:, None]
    spans = torch.stack([ink_left, ink_left + layout.width * scale[:, None]], dim=-1)
    return LineBatch(
        images=images,
        widths=widths,
        targets=split.labels[indices][valid],
        lengths=lengths,
        indices=torch.where(valid, indices, -1),
        spans=torch.where(valid[..., None], spans, 0.0),
        combs=combs,
        ruled=ruled,
    )


def batches_by_width(
    split: Split, batches: int, batch_size: int, config: LinesConfig, generator: torch.Generator
) -> list[LineBatch]:
    """``batches`` batches of random lines, each of lines of similar widths (cut to its widest), in a random order.

    A batch of lines of 0-12 digits drawn together is padded to its widest: its mean width was 0.47 of that
    (2026-12-04), and the line model computed on the padding. Drawn by length (the lengths sorted, a batch at a
    time: as cheap per line as one batch, where drawing the whole pool at once padded it to its widest line and
    cost 1.7x) and then batched by the widths drawn, the mean width is 0.87 of the widest."""
    lengths = _lengths(batches * batch_size, config, generator)
    drawn = [make_lines_of(split, chunk, config, generator) for chunk in lengths.sort().values.split(batch_size)]
    return by_width(LineBatch.joined(drawn), batch_size, generator)


def by_width(lines: LineBatch, batch_size: int, generator: torch.Generator) -> list[LineBatch]:
    """Lines -> batches of ``batch_size`` lines of similar widths, each cut to its widest, in a random order."""
    order = torch.argsort(lines.widths, stable=True)
    groups = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    return [lines.select(groups[index]) for index in torch.randperm(len(groups), generator=generator).tolist()]


def fixed_lines(split: Split, count: int, config: LinesConfig, seed: int, chunk: int = 500):
    """The same ``count`` lines for a seed every time (validation, test), made ``chunk`` lines at a time."""
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, count, chunk):
        yield make_lines(split, min(chunk, count - start), config, generator)


def _lengths(count: int, config: LinesConfig, generator: torch.Generator) -> Tensor:
    """(count,) digits per line, drawn uniformly from ``config.min_digits`` to ``config.max_digits``."""
    return torch.randint(config.min_digits, config.max_digits + 1, (count,), generator=generator)


def _uniform(count: int, bounds: tuple[float, float], generator: torch.Generator, *shape: int) -> Tensor:
    low, high = bounds
    return low + (high - low) * torch.rand((count, *shape), generator=generator)


def _chosen(share: float, count: int, generator: torch.Generator) -> Tensor:
    """(N, 1, 1, 1) bool: which lines get an effect given to ``share`` of them."""
    return (torch.rand(count, generator=generator) < share).view(count, 1, 1, 1)


@dataclass
class _Layout:
    """Where each glyph goes on the canvas, in canvas pixels, and how it is drawn."""

    left: Tensor  # (N, L): the glyph's leftmost ink column
    width: Tensor  # (N, L): its ink's width
    first: Tensor  # (N, L): its first ink column in the 28x28 glyph
    scale: Tensor  # (N, L): canvas pixels per MNIST pixel
    slant: Tensor  # (N, L): x shift per row, about the glyph's centre
    turn: Tensor  # (N, L): the glyph's own rotation, radians
    centre_y: Tensor  # (N, L)
    lift: Tensor  # (N, L): how far a digit of a comb sits below its box's middle (negative: above)
    height: Tensor  # (N,): the line's digit height
    pitch: Tensor  # (N,): a comb's box width, for lines written in one
    boxes: Tensor  # (N,): a comb's boxes
    right: Tensor  # (N,): where the line's canvas ends

    @property
    def top(self) -> Tensor:  # (N,): about where the line's ink begins
        return (self.centre_y - DIGIT_HEIGHT / 2 * self.scale).amin(1)

    @property
    def bottom(self) -> Tensor:
        return (self.centre_y + DIGIT_HEIGHT / 2 * self.scale).amax(1)

    def boxed(self) -> tuple[Tensor, Tensor]:
        """(N,) top and bottom of where the digits would lie had none left its comb's box."""
        centre_y, half = self.centre_y - self.lift, DIGIT_HEIGHT / 2 * self.scale
        return (centre_y - half).amin(1), (centre_y + half).amax(1)


def _layout(glyphs: Tensor, valid: Tensor, combs: Tensor, generator: torch.Generator) -> _Layout:
    count, slots = valid.shape
    columns = glyphs.amax(dim=2) > INK_LEVEL  # (N, L, 28): columns holding ink
    has_ink = columns.any(-1)
    first = torch.where(has_ink, columns.float().argmax(-1), 0).float()
    last = torch.where(has_ink, IMAGE_SIZE - columns.flip(-1).float().argmax(-1), IMAGE_SIZE).float()
    scale = _uniform(count, LINE_SCALE, generator)[:, None] * _uniform(count, GLYPH_SCALE, generator, slots)
    slant = _uniform(count, LINE_SLANT, generator)[:, None] + _uniform(count, GLYPH_SLANT, generator, slots)
    width = (last - first) * scale
    height = DIGIT_HEIGHT * scale.mean(1)
    # Free writing: each line draws its kind of spacing, then each gap within that kind's range.
    kind = torch.randint(len(SPACINGS), (count,), generator=generator)
    low, high = torch.tensor(SPACINGS).T
    share = low[kind][:, None] + (high - low)[kind][:, None] * torch.rand((count, slots), generator=generator)
    advance = torch.maximum(width + share * height[:, None], torch.full_like(width, MIN_ADVANCE))
    left = CANVAS_MARGIN + torch.cumsum(advance, 1) - advance
    # In a comb each digit sits in its box, a little off centre; blank combs and spare boxes are common on forms.
    pitch = _uniform(count, COMB_PITCH, generator) * height
    lengths = valid.sum(1)
    spare = torch.randint(0, 3, (count,), generator=generator)
    boxes = torch.where(lengths > 0, lengths + spare, 3 + spare)
    centre = CANVAS_MARGIN + pitch[:, None] * (torch.arange(slots) + 0.5)
    offset = _uniform(count, COMB_OFFSET, generator, slots) * pitch[:, None]
    left = torch.where(combs[:, None], centre - width / 2 + offset, left)
    # Where each line's canvas ends: after its last glyph (a blank line: a few digits' width), or its comb.
    ends = torch.where(valid, left + width, 0.0).amax(1)
    blank_width = _uniform(count, (1.0, 4.0), generator) * height
    ends = torch.where(lengths > 0, ends, CANVAS_MARGIN + blank_width)
    ends = torch.where(combs, CANVAS_MARGIN + pitch * boxes, ends)
    centre_y = CANVAS_HEIGHT / 2 + _uniform(count, (-BASELINE_JITTER, BASELINE_JITTER), generator, slots)
    crossing = torch.rand((count, slots), generator=generator) < COMB_CROSS_SHARE
    lift = torch.where(
        crossing, _uniform(count, COMB_CROSS_LIFT, generator, slots), _uniform(count, COMB_LIFT, generator, slots)
    )
    lift = torch.where(combs[:, None], lift * height[:, None], 0.0)
    turn = _uniform(count, GLYPH_TURN, generator, slots)
    return _Layout(
        left, width, first, scale, slant, turn, centre_y + lift, lift, height, pitch, boxes, ends + CANVAS_MARGIN
    )


def _grid_axes(width: int) -> tuple[Tensor, Tensor]:
    """Pixel centres of a canvas ``width`` wide: x (1, 1, W) and y (1, H, 1)."""
    return (torch.arange(width) + 0.5).view(1, 1, -1), (torch.arange(CANVAS_HEIGHT) + 0.5).view(1, -1, 1)


def _place(glyphs: Tensor, valid: Tensor, layout: _Layout, width: int) -> Tensor:
    """Every glyph drawn at its place: per digit position one ``grid_sample`` of a window around each line's glyph,
    laid onto the canvas with a maximum (neighbours that overlap cross, as pen strokes do)."""
    count, slots = valid.shape
    window = torch.arange(GLYPH_WINDOW)
    canvas = torch.zeros(count, CANVAS_HEIGHT, width + GLYPH_WINDOW)  # room for a window at the right edge
    _, y = _grid_axes(width)
    y = y.view(1, CANVAS_HEIGHT, 1)
    for slot in range(slots):
        if not valid[:, slot].any():
            break  # positions past the longest line's last digit
        scale, slant = layout.scale[:, slot, None, None], layout.slant[:, slot, None, None]
        centre_y = layout.centre_y[:, slot, None, None]
        # The glyph image's centre column lands where its first ink column starts at ``left``.
        centre_x = layout.left[:, slot, None, None] + (IMAGE_SIZE / 2 - layout.first[:, slot, None, None]) * scale
        origin = (centre_x - GLYPH_WINDOW / 2).floor().clamp(0, width)  # (N, 1, 1): the window's first column
        x = origin + window.view(1, 1, -1) + 0.5
        cos, sin = layout.turn[:, slot, None, None].cos(), layout.turn[:, slot, None, None].sin()
        dx, dy = x - centre_x - slant * (y - centre_y), y - centre_y  # slant undone, then the turn
        source_x = (cos * dx + sin * dy) / scale + IMAGE_SIZE / 2
        source_y = (cos * dy - sin * dx) / scale + IMAGE_SIZE / 2
        grid = torch.stack(torch.broadcast_tensors(source_x, source_y), dim=-1) / IMAGE_SIZE * 2 - 1
        drawn = F.grid_sample(glyphs[:, slot, None], grid, align_corners=False)[:, 0]  # (N, H, window)
        drawn = drawn * valid[:, slot, None, None]
        columns = (origin.long() + window.view(1, 1, -1)).expand(count, CANVAS_HEIGHT, GLYPH_WINDOW)
        canvas.scatter_reduce_(2, columns, drawn, "amax")
    return canvas[:, None, :, :width]


def _soft_line(distance: Tensor, thickness: Tensor) -> Tensor:
    """Ink of a line ``thickness`` pixels wide at ``distance`` pixels from its middle, anti-aliased."""
    return (thickness / 2 + 0.5 - distance.abs()).clamp(0, 1)


def _comb(
    layout: _Layout, valid: Tensor, combs: Tensor, width: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """The boxes of a comb around the digits of the lines written in one, nothing on the others: (its ticks
    between the boxes, its top and bottom lines)."""
    count, slots = valid.shape
    x, y = _grid_axes(width)
    x, y = x[..., None], y[..., None]  # a last axis for the ticks
    ticks = CANVAS_MARGIN + layout.pitch[:, None] * torch.arange(slots + 3)  # (N, ticks) x of each box edge
    has_tick = torch.arange(slots + 3)[None] <= layout.boxes[:, None]
    top, bottom = layout.boxed()
    top, bottom = top - _uniform(count, COMB_REACH, generator), bottom + _uniform(count, COMB_REACH, generator)
    short = torch.rand(count, generator=generator) < SHORT_TICK_SHARE
    tick_top = torch.where(short, bottom - _uniform(count, SHORT_TICK, generator) * (bottom - top), top)
    thickness = _uniform(count, (1.0, 2.0), generator).view(count, 1, 1, 1)
    rows = ((y >= tick_top.view(-1, 1, 1, 1)) & (y <= bottom.view(-1, 1, 1, 1))).float()
    vertical = (_soft_line(x - ticks.view(count, 1, 1, -1), thickness) * has_tick.view(count, 1, 1, -1)).amax(-1)
    vertical = vertical * rows[..., 0]
    across = ((x[..., 0] >= ticks[:, :1, None]) & (x[..., 0] <= layout.right[:, None, None] - CANVAS_MARGIN)).float()
    horizontal = torch.maximum(
        _soft_line(y[..., 0] - top.view(-1, 1, 1), thickness[..., 0]),
        _soft_line(y[..., 0] - bottom.view(-1, 1, 1), thickness[..., 0]),
    )
    ink = _uniform(count, FORM_LINE_INK, generator).view(-1, 1, 1) * combs.view(-1, 1, 1)
    return (vertical * ink).unsqueeze(1), (horizontal * across * ink).unsqueeze(1)


def _ruled(layout: _Layout, valid: Tensor, ruled: Tensor, width: int, generator: torch.Generator) -> Tensor:
    """A ruled line under (or through the foot of) the digits, and the line above, across the whole canvas."""
    count = len(ruled)
    _, y = _grid_axes(width)
    below = layout.bottom + _uniform(count, RULED_BELOW, generator)
    above = below - _uniform(count, (1.2, 1.6), generator) * layout.height * 1.5
    thickness = _uniform(count, (1.0, 1.8), generator).view(-1, 1, 1)
    ink = torch.maximum(
        _soft_line(y - below.view(-1, 1, 1), thickness), _soft_line(y - above.view(-1, 1, 1), thickness)
    ).expand(count, CANVAS_HEIGHT, width)
    ink = ink * _uniform(count, FORM_LINE_INK, generator).view(-1, 1, 1)
    return (ink * ruled.view(-1, 1, 1)).unsqueeze(1)


def _tilted(canvas: Tensor, generator: torch.Generator) -> Tensor:
    """The whole line tilted a little (``LINE_TILT``), as a line written or photographed askew: rows sheared
    about the line's middle, which for these angles is a rotation to within a fraction of a pixel."""
    count, _, height, width = canvas.shape
    tilt = _uniform(count, LINE_TILT, generator).view(-1, 1, 1)
    x, y = _grid_axes(width)
    source_y = y + (x - width / 2) * tilt
    grid = torch.stack(torch.broadcast_tensors(x + 0 * tilt, source_y), dim=-1) / torch.tensor([width, height]) * 2 - 1
    return F.grid_sample(canvas, grid, align_corners=False)


def _junk(blank: Tensor, width: int, generator: torch.Generator) -> Tensor:
    """What is not writing but passes the stages' threshold, on some blank lines: smooth blobs (a texture, a
    shadow's edge) or grain (paper fibres, sensor noise). The line model learns to read nothing there."""
    count = len(blank)
    ink = torch.zeros(count, 1, CANVAS_HEIGHT, width)
    chosen = (blank & (torch.rand(count, generator=generator) < JUNK_SHARE)).nonzero().flatten()
    if len(chosen) == 0:
        return ink
    coarse = torch.rand((len(chosen), 1, CANVAS_HEIGHT // 8, width // 8 + 1), generator=generator)
    smooth = F.interpolate(coarse, size=(CANVAS_HEIGHT, width), mode="bicubic", align_corners=False)
    blobs = ((smooth - 0.65) / 0.1).clamp(0, 1)
    grain = (torch.rand((len(chosen), 1, CANVAS_HEIGHT, width), generator=generator) > 0.9).float()
    grain = F.max_pool2d(grain, 2, stride=1, padding=1)[..., :CANVAS_HEIGHT, :width] * 0.8
    ink[chosen] = torch.where(_chosen(0.5, len(chosen), generator), blobs, grain)
    return ink


def _strokes(canvas: Tensor, generator: torch.Generator) -> Tensor:
    """Bolder or finer strokes for some lines, and broken strokes for some."""
    count = len(canvas)
    thicken = _chosen(THICKEN_SHARE, count, generator)
    thin = _chosen(THIN_SHARE, count, generator) & ~thicken
    canvas = torch.where(thin, canvas**3, canvas)  # the anti-aliased edge fades: a stroke about a pixel thinner
    bolder = thicken.flatten().nonzero().flatten()
    canvas[bolder] = F.max_pool2d(canvas[bolder], 3, stride=1, padding=1)
    # Breaks: a few thin vertical and horizontal gaps through the ink.
    x, y = _grid_axes(canvas.shape[-1])
    cuts = 4
    at_x = _uniform(count, (0, canvas.shape[-1]), generator, cuts).view(count, 1, 1, cuts)
    at_y = _uniform(count, (0, CANVAS_HEIGHT), generator, cuts).view(count, 1, 1, cuts)
    gaps = torch.maximum(
        _soft_line(x[..., None] - at_x, torch.tensor(1.0)).amax(-1),
        _soft_line(y[..., None] - at_y, torch.tensor(1.0)).amax(-1),
    ).unsqueeze(1)
    return torch.where(_chosen(BREAK_SHARE, count, generator), canvas * (1 - gaps), canvas)


def _specks(layout: _Layout, width: int, generator: torch.Generator) -> Tensor:
    """A few dots of dust around the digits, on some lines."""
    count = len(layout.right)
    ink = torch.zeros(count, 1, CANVAS_HEIGHT, width)
    chosen = _chosen(SPECK_SHARE, count, generator).flatten().nonzero().flatten()
    x, y = _grid_axes(width)
    at_x = _uniform(len(chosen), (0, 1), generator, MAX_SPECKS) * layout.right[chosen, None]
    at_y = _uniform(len(chosen), (0, CANVAS_HEIGHT), generator, MAX_SPECKS)
    radius = _uniform(len(chosen), (0.5, 1.5), generator, MAX_SPECKS)
    present = torch.rand((len(chosen), MAX_SPECKS), generator=generator) < 0.5
    distance = ((x[..., None] - at_x[:, None, None]) ** 2 + (y[..., None] - at_y[:, None, None]) ** 2).sqrt()
    ink[chosen, 0] = ((radius[:, None, None] + 0.5 - distance).clamp(0, 1) * present[:, None, None]).amax(-1)
    return ink


def _normalise(canvas: Tensor, extent: Tensor, layout: _Layout) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Each line as the reader normalises one: its ink's rows scaled to ``LINE_INK_HEIGHT`` of ``LINE_HEIGHT``
    rows, ``LINE_SIDE_MARGIN`` columns left and right of its ink, padded with zeros to the batch's width.

    -> (images, widths, scale, shift): canvas x maps to ``x * scale + shift`` in ``images``."""
    count = len(canvas)
    ink = extent[:, 0] > INK_LEVEL
    rows, columns = ink.any(2), ink.any(1)
    has_ink = rows.any(1)
    top = torch.where(has_ink, rows.float().argmax(1), layout.top.round().long()).float()
    bottom = torch.where(has_ink, rows.shape[1] - rows.flip(1).float().argmax(1), layout.bottom.round().long())
    left = torch.where(has_ink, columns.float().argmax(1), CANVAS_MARGIN).float()
    right = torch.where(has_ink, columns.shape[1] - columns.flip(1).float().argmax(1), layout.right.long() - 8)
    scale = LINE_INK_HEIGHT / (bottom.float() - top).clamp(min=1)
    widths = ((right.float() - left) * scale + 2 * LINE_SIDE_MARGIN) / LINE_STRIDE
    widths = widths.ceil().long().clamp(min=1) * LINE_STRIDE
    out_width = int(widths.max())
    x = (torch.arange(out_width) + 0.5).view(1, 1, -1)
    y = (torch.arange(LINE_HEIGHT) + 0.5).view(1, -1, 1)
    first_row = (LINE_HEIGHT - LINE_INK_HEIGHT) / 2
    source_x = left.view(-1, 1, 1) + (x - LINE_SIDE_MARGIN) / scale.view(-1, 1, 1)
    source_y = top.view(-1, 1, 1) + (y - first_row) / scale.view(-1, 1, 1)
    size = torch.tensor([canvas.shape[-1], CANVAS_HEIGHT])
    grid = torch.stack(torch.broadcast_tensors(source_x, source_y), dim=-1) / size * 2 - 1
    images = F.grid_sample(canvas, grid, align_corners=False)
    inside = (torch.arange(out_width)[None] < widths[:, None]).view(count, 1, 1, -1)
    return images * inside, widths, scale, LINE_SIDE_MARGIN - left * scale


def _blur(images: Tensor) -> Tensor:
    """A 3x3 binomial blur (1-2-1 each way), as two passes of shifted sums: a tenth of conv2d's time here."""
    padded = F.pad(images, (1, 1, 1, 1))
    across = (padded[..., :-2] + 2 * padded[..., 1:-1] + padded[..., 2:]) / 4
    return (across[..., :-2, :] + 2 * across[..., 1:-1, :] + across[..., 2:, :]) / 4


def _degrade(images: Tensor, widths: Tensor, generator: torch.Generator) -> Tensor:
    """Low resolution, blur and noise for some lines, as small, soft or grainy pictures give the reader."""
    count, _, height, width = images.shape
    enlarged = [
        F.interpolate(
            F.interpolate(images, size=(round(height / factor), max(1, round(width / factor))), mode="area"),
            size=(height, width),
            mode="bilinear",
            align_corners=False,
        )
        for factor in LOW_RESOLUTION_FACTORS
    ]
    factor = torch.randint(len(LOW_RESOLUTION_FACTORS), (count,), generator=generator).view(-1, 1, 1, 1)
    low = torch.stack(enlarged).gather(0, factor[None].expand(1, *images.shape))[0]
    images = torch.where(_chosen(LOW_RESOLUTION_SHARE, count, generator), low, images)
    blurred = _chosen(BLUR_SHARE, count, generator).flatten().nonzero().flatten()
    images[blurred] = _blur(images[blurred])
    sigma = _uniform(count, (0, NOISE_SIGMA), generator).view(-1, 1, 1, 1) * _chosen(NOISE_SHARE, count, generator)
    images = (images + sigma * torch.randn(images.shape, generator=generator)).clamp(0, 1)
    inside = (torch.arange(width)[None] < widths[:, None]).view(count, 1, 1, -1)
    return _saturate(images * inside)


def _saturate(images: Tensor) -> Tensor:
    """Strokes scaled so their typical pixel reaches 1, as the reader scales a line's contrast (``reading.lines``):
    a faint, blurred or low-resolution line comes out as bold as a sharp one. The typical pixel is the median of
    those past ``SATURATION_MASK_SHARE`` of the line's brightest, the share the stages' threshold keeps."""
    flat = images.flatten(1)
    brightest = flat.amax(1, keepdim=True)
    ink = flat > SATURATION_MASK_SHARE * brightest
    level = torch.where(ink, flat, torch.nan).nanquantile(0.5, dim=1, keepdim=True)
    level = torch.where(ink.any(1, keepdim=True) & (brightest > INK_LEVEL), level, torch.ones_like(level))
    return (flat / level.clamp(min=1e-6)).clamp(0, 1).view(images.shape)
