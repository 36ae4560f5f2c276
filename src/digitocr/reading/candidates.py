"""Pictures -> digit candidates, no model involved: the stages (``stages.py``) find the ink, ``segment.py`` the
pieces and the ways to cut touching ones, and every piece is normalised to the 28x28 image the model sees.

Pictures whose working images have the same size go through the stages together as one stack.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from digitocr.config import DIGIT_BOX, IMAGE_SIZE, ReadingConfig
from digitocr.reading import stages
from digitocr.reading.images import load_working_many
from digitocr.reading.segment import CutLattice, digit_choices, find_components

STACK_PIXELS = 4_000_000  # pixels of working images processed as one stack (about 16 MB per float array)
# What counts as ink in a normalised 28x28 image (``plausible_digits``), as the first reader set them, not tuned
# since (benchmarks/reading_accuracy.py is the measure): a row holds ink where a pixel passes INK_ROW_LEVEL (a
# faint anti-aliased edge counts towards the digit's height), and strokes are measured on pixels past STROKE_LEVEL.
INK_ROW_LEVEL = 0.1
STROKE_LEVEL = 0.5
# A digit cropped tight touches all four sides of its picture; its first reading, with paper and polarity
# misjudged, at least three (a digit with a margin touches none, a number on ruled paper two: the lines).
# Measured 2026-12-02 (benchmarks/reading_accuracy.py, the reader, while trying the rule): tight crops read 90.7 % dark
# on light and 93.7 % light on dark with three sides, 77.3 % / 85.0 % with four; no other category lost.
CROP_SIDES_TOUCHED = 3
# ... and its ink is at least a tenth of it (MNIST's digits cover about a quarter of their 20x20 box): ink that runs
# off three sides of a photo is the table beside a page in perspective or a shadow, a few percent of the picture
# (measured on the benchmark's first readings: tight crops 9-28 %, all but 4 of 475 >= 10 %; colour photos,
# ruled pages, a small number in a photo 0.5-4 %: read on a frame, colour photos lost 3 points).
CROP_MIN_INK = 0.1
# ... and its greys are two levels, paper and ink: a picture of smooth shading or a texture (a wall, a table, a
# shadow) also runs off every side, and its blobs, taken for a crop's one line, read as digits (the line reader read
# 15 of 61 such textures as a 1 or a 3, in a draw of 600 pictures with no digits). Share of the greys' variance
# between the two classes of the best cut (``stages.two_level_share``): such textures 0.59-0.75 (median 0.69),
# tight crops of validation digits 0.63-0.88 (6 of 473 under 0.72); but a digit on paper shaded to its corners is
# taken for a crop too, and its greys are two levels only once the lighting is out (of 33 photos of one digit taken
# for crops, 4 under 0.70 as they are: 0.72-0.82 unlit). Under 0.70 both ways: 34 of the 61 textures, 2 of the 473
# crops (one read right), no photo (2026-12-07, the draw of seed 12345, and 300 pictures of each kind from
# ``--validation --seed 1``). The cost: tall crops of a blurred 1 are such a blob too (2 of 300 lost on test pictures).
MIN_TWO_LEVEL_SHARE = 0.70
# The frame of paper such a picture is read on: MNIST's, 4 pixels around its 20-pixel box, per side.
CROP_FRAME_SHARE = (IMAGE_SIZE - DIGIT_BOX) / 2 / DIGIT_BOX


@dataclass
class Candidate:
    """Something that may be a digit: where it is in the input picture and its normalised 28x28 image."""

    box: tuple[int, int, int, int]  # x, y, w, h in the input picture's pixels
    image: np.ndarray  # (28, 28) float32 in [0, 1]
    plausible: bool = True  # could be an MNIST digit at all (``plausible_digits``), before asking the model
    stroke: float = 0.0  # mean stroke width in the 28x28 image (pixels)
    # Where the same ink may be cut into touching digits (its cut columns and digit counts), and the candidate
    # between cut columns i and j: a reading of the piece as several digits is a path 0 -> lattice.last.
    lattice: CutLattice | None = None
    parts: dict[tuple[int, int], Candidate] = field(default_factory=dict)
    probabilities: np.ndarray | None = None  # (10,) from the model, once read
    top3: list[tuple[int, float]] = field(default_factory=list)  # best three (digit, probability), once read


def prepare(source, config: ReadingConfig = ReadingConfig()) -> list[Candidate]:
    """A picture -> its digit candidates, left to right (no model involved). Raises ImageError."""
    return prepare_many([source], config)[0]


def prepare_many(sources, config: ReadingConfig = ReadingConfig()) -> list[list[Candidate]]:
    """Pictures -> the digit candidates of each. Raises ImageError for the first that cannot be read.

    Pictures whose working images have the same size go through the stages together as one stack, in
    chunks of about ``STACK_PIXELS`` pixels, so many small pictures cost little more than one.
    """
    return prepare_loaded(load_working_many(sources, config), config)


def prepare_loaded(loaded: list[tuple[np.ndarray, tuple]], config: ReadingConfig) -> list[list[Candidate]]:
    """``load_working_many``'s working images and mappings -> the digit candidates of each."""
    return per_stack(loaded, lambda greys, mappings: candidates_in(greys, mappings, config))


def per_stack(loaded: list[tuple[np.ndarray, tuple]], find: Callable[[np.ndarray, list], list]) -> list:
    """``find(greys (N, H, W), mappings)`` -> one answer per picture, run on stacks of same-sized working images
    of about ``STACK_PIXELS`` pixels each; the answers come back in the pictures' order."""
    by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, (grey, _) in enumerate(loaded):
        by_size[grey.shape].append(index)
    found: list = [None] * len(loaded)
    for (height, width), indices in by_size.items():
        chunk = max(1, STACK_PIXELS // (height * width))
        for start in range(0, len(indices), chunk):
            part = indices[start : start + chunk]
            mappings = [loaded[i][1] for i in part]
            for index, answer in zip(part, find(np.stack([loaded[i][0] for i in part]), mappings)):
                found[index] = answer
    return found


def ink_of(grey: np.ndarray, config: ReadingConfig = ReadingConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Working grey images (..., H, W) -> (ink contrast, ink mask): lighting removed, polarity fixed, thresholded.

    The mask comes from the denoised picture; the contrast the digits are cut from is not blurred, so
    strokes keep MNIST's sharpness. A picture with more ink than ``max_ink_fraction`` is a photo or a
    texture rather than written digits: its mask is empty. A picture that its ink fills (``fills_picture``)
    is read again on a frame of its own paper, and keeps that reading, unframed.
    """
    contrast, mask, _ = ink_and_crops(grey, config)
    return contrast, mask


def ink_and_crops(
    grey: np.ndarray, config: ReadingConfig = ReadingConfig(), flip_crops: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``ink_of``, and which pictures were read on a frame (..., bool): those their ink filled, a tight crop.

    ``flip_crops``: the pictures are tight crops (as this judged them, not judged again), their ink taken in the
    polarity the stages did not choose. Without a margin of paper the choice is a guess (a fat, blurred digit may
    cover half its crop), which the line reader settles by reading a crop both ways (``transcribe.read_lines``)."""
    stack = grey.reshape(-1, *grey.shape[-2:])
    if flip_crops:
        contrast, mask = np.empty(stack.shape, np.float32), np.empty(stack.shape, bool)
        crops = np.ones(len(stack), bool)
    else:
        contrast, mask, loose = find_ink(stack, config)
        crops = fills_picture(loose, config)
        if crops.any():
            # Greys that are two levels neither as they are nor once the lighting is out are shading or a texture:
            # no crop, and no ink. A crop two levels only once unlit stays a crop (read as a picture with a margin,
            # validation pictures lost a font digit and a tight crop).
            writing = np.zeros_like(crops)
            writing[crops] = np.logical_or(*two_levels(stack[crops]))
            mask[crops & ~writing] = False
            crops &= writing
    # The share of ink is judged on the area read: a crop's framed picture, whose ink a filled digit may be.
    area = np.full(len(stack), float(stack.shape[1] * stack.shape[2]))
    if crops.any():
        margin = max(1, round(CROP_FRAME_SHARE * max(stack.shape[1:])))
        framed_contrast, framed_mask, _ = find_ink(stages.on_paper(stack[crops], margin), config, flip=flip_crops)
        inside = (slice(None), slice(margin, margin + stack.shape[1]), slice(margin, margin + stack.shape[2]))
        contrast[crops], mask[crops] = framed_contrast[inside], framed_mask[inside]
        area[crops] = framed_mask[0].size
    mask &= (mask.sum((1, 2)) <= config.max_ink_fraction * area)[:, None, None]
    return contrast.reshape(grey.shape), mask.reshape(grey.shape), crops.reshape(grey.shape[:-2])


def find_ink(stack: np.ndarray, config: ReadingConfig, flip: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stages on a stack (N, H, W) -> (ink contrast, everything past the threshold and out of the noise
    (``stages.noise_floor``), however much that is, everything past the threshold alone); ``flip``: with the ink's
    polarity the other way than ``stages.ink_is_dark`` judges it. Whether a picture is a tight crop is judged on
    the last: a fat, blurred digit filling its crop is faint against its grain, and above the floor it often
    stopped running off three sides (tight crops dark on light 94.0 -> 92.3 % on validation pictures). On a framed
    crop the floor is measured on the framed picture, whose flat frame lowers it
    (``stages.THRESHOLD_PIXEL_NOISE_SIGMAS``)."""
    clean = stages.remove_noise(stack)
    paper = stages.estimate_paper(clean)
    ordered = stages.sorted_sample(clean - paper)  # one sort for the threshold's statistics
    paper, ordered = stages.centre_on_majority(paper, ordered)
    dark_ink = stages.ink_is_dark(clean, paper) != flip
    clean_contrast = stages.ink_contrast(clean, paper, dark_ink)
    threshold, _ = stages.ink_threshold(clean_contrast, config.min_contrast, stages.contrast_sample(ordered, dark_ink))
    loose = clean_contrast > np.asarray(threshold)[:, None, None]
    ink = loose & (clean_contrast > stages.noise_floor(clean)[:, None, None])
    return stages.ink_contrast(stack, paper, dark_ink), ink, loose


def two_levels(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether each picture's (N, H, W) greys are two levels, paper and ink, however blurred
    (``stages.two_level_share`` at least MIN_TWO_LEVEL_SHARE): as they are, and once the lighting
    (``stages.estimate_paper``) is taken out."""
    clean = stages.remove_noise(stack)
    unlit = clean - stages.estimate_paper(clean)
    shares = [stages.two_level_share(stages.sorted_sample(greys)) for greys in (clean, unlit)]
    return shares[0] >= MIN_TWO_LEVEL_SHARE, shares[1] >= MIN_TWO_LEVEL_SHARE


def fills_picture(mask: np.ndarray, config: ReadingConfig) -> np.ndarray:
    """Whether each picture's ink (N, H, W) says that a digit fills it: a tight crop (a form cell, a canvas cut to
    its ink, a digit enlarged from a small scan) leaves no margin of paper, the stages misjudge paper and
    polarity, and what they take for ink, at least CROP_MIN_INK of the picture, runs into CROP_SIDES_TOUCHED
    sides, or covers more than ``max_ink_fraction`` of it."""
    sides = np.stack([mask[:, 0].any(1), mask[:, -1].any(1), mask[:, :, 0].any(1), mask[:, :, -1].any(1)], axis=1)
    share = mask.mean((1, 2))
    return ((sides.sum(1) >= CROP_SIDES_TOUCHED) & (share >= CROP_MIN_INK)) | (share > config.max_ink_fraction)


def candidates_in(
    greys: np.ndarray, mappings: list[tuple[float, float, int]], config: ReadingConfig
) -> list[list[Candidate]]:
    """A stack of working images (N, H, W) and how each maps to its input's pixels -> each one's candidates."""
    contrast, mask = ink_of(greys, config)
    choices = digit_choices(find_components(mask))
    # Every piece of every picture, wholes and the parts they may be cut into, is normalised in one batch.
    pieces = [
        (picture, piece)
        for picture, found in enumerate(choices)
        for whole, lattice in found
        for piece in [whole, *(lattice.parts.values() if lattice else ())]
    ]
    images = stages.normalise_digits(
        [(contrast[picture, y0:y1, x0:x1], piece.mask) for picture, piece in pieces for x0, y0, x1, y1 in [piece.box]]
    )
    plausible, strokes = plausible_digits(images, config)
    made = iter(
        Candidate(input_box(piece.box, mappings[picture]), image, bool(ok), float(stroke))
        for (picture, piece), image, ok, stroke in zip(pieces, images, plausible, strokes)
    )
    found_per_picture = []
    for found in choices:
        candidates = []
        for _, lattice in found:
            candidates.append(next(made))
            if lattice:
                candidates[-1].lattice, candidates[-1].parts = lattice, {key: next(made) for key in lattice.parts}
        found_per_picture.append(candidates)
    return found_per_picture


def input_box(box: tuple[int, int, int, int], mapping: tuple[float, float, int]) -> tuple[int, int, int, int]:
    """A working-image box (x0, y0, x1, y1) -> x, y, w, h in the input picture's pixels (``load_working``)."""
    x0, y0, x1, y1 = box
    sx, sy, margin = mapping
    x, y = max(0, round((x0 - margin) * sx)), max(0, round((y0 - margin) * sy))
    return x, y, max(1, round((x1 - x0) * sx)), max(1, round((y1 - y0) * sy))


def plausible_digits(images: np.ndarray, config: ReadingConfig) -> tuple[np.ndarray, np.ndarray]:
    """Whether each normalised 28x28 image could be an MNIST digit at all, before asking the model; and its
    stroke width.

    A filled blob (a dot, a smudge, a horse) has more ink and far thicker strokes than any MNIST digit,
    a wisp less ink, and a dash or a ruled line is too flat: MNIST digits fill the 20-pixel box in height
    unless they are wider than tall.
    """
    low, high = config.ink_mass_range
    mass = images.mean((1, 2))
    rows = images.max(2) > INK_ROW_LEVEL
    height = rows.shape[1] - np.argmax(rows[:, ::-1], axis=1) - np.argmax(rows, axis=1)
    strokes = stages.stroke_width(images > STROKE_LEVEL)  # (M,)
    plausible = (low <= mass) & (mass <= high) & rows.any(1) & (height >= config.min_height)
    return plausible & (strokes <= config.max_stroke), strokes
