"""The line reader's benchmark pictures (digitocr.testing.pictures, comb onwards): what each promises.

Fast: glyphs are font digits the test renders in MNIST's layout, never real MNIST. Each kind gives the same
pictures for a seed, they decode at the size and in the colours promised, and their text is what was drawn.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFilter
from scipy import ndimage

from digitocr.testing.pictures import (
    COLOUR_DIGITS,
    COMB_DIGITS,
    EMPTY_PICTURES,
    LINE_DIGITS,
    LINES,
    NUMBER_DIGITS,
    SMALL_DIGITS,
    SMALL_PHOTO,
    TIGHT_SHOWN,
    comb_form,
    compose_number,
    font_files,
    font_glyph,
    make_samples,
    stack_lines,
    tight_crop,
)

NEW_KINDS = ("comb", "ruled", "colour", "small", "lines", "tight-dark", "tight-light", "edge")
DIGITS = {  # kind -> (fewest, most) digits of a line
    "comb": COMB_DIGITS,
    "ruled": NUMBER_DIGITS,
    "colour": COLOUR_DIGITS,
    "small": SMALL_DIGITS,
    "lines": LINE_DIGITS,
    "tight-dark": (1, 1),
    "tight-light": (1, 1),
}
PICTURES = 6  # per kind and check: enough to meet most of a generator's branches, quick to make


def mnist_like(digit: int, rng: np.random.Generator) -> np.ndarray:
    """A font digit as MNIST lays one out: its ink fitted into 20x20, centred in 28x28, ink high in [0, 1]."""
    ink = font_glyph(digit, rng, font_files())
    scale = 20 / max(ink.shape)
    size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
    fitted = np.asarray(Image.fromarray(ink).resize(size, Image.BILINEAR))
    canvas = np.zeros((28, 28), np.float32)
    y, x = (28 - fitted.shape[0]) // 2, (28 - fitted.shape[1]) // 2
    canvas[y : y + fitted.shape[0], x : x + fitted.shape[1]] = fitted
    return canvas.clip(0, 1)


@pytest.fixture(scope="module")
def glyphs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = np.arange(30) % 10
    return np.stack([mnist_like(int(label), rng) for label in labels]), labels


def disc(size: int = 20) -> np.ndarray:
    """A solid round blob: one component of ink wherever it is drawn, whatever its scale."""
    ys, xs = np.mgrid[0:28, 0:28]
    return ((ys - 13.5) ** 2 + (xs - 13.5) ** 2 <= (size / 2) ** 2).astype(np.float32)


def decoded(sample) -> Image.Image:
    picture = Image.open(io.BytesIO(sample.data))
    picture.load()
    return picture


@pytest.mark.parametrize("kind", NEW_KINDS)
def test_each_kind_gives_the_same_pictures_for_a_seed_and_others_for_another(glyphs, kind):
    first, again, other = (make_samples(kind, 3, *glyphs, seed=seed) for seed in (4, 4, 5))
    assert [(s.data, s.text, s.kind) for s in first] == [(s.data, s.text, s.kind) for s in again]
    assert [s.data for s in first] != [s.data for s in other]
    assert {s.kind for s in first} == {kind}


@pytest.mark.parametrize("kind", [kind for kind in NEW_KINDS if kind != "edge"])
def test_the_text_is_digits_in_the_promised_numbers(glyphs, kind):
    fewest, most = DIGITS[kind]
    for sample in make_samples(kind, PICTURES * 2, *glyphs, seed=1):
        lines = sample.text.split("\n")
        assert len(lines) in (range(LINES[0], LINES[1] + 1) if kind == "lines" else (1,)), sample.text
        assert all(line.isdigit() and fewest <= len(line) <= most for line in lines), sample.text
        assert decoded(sample).size[0] > 0


def test_edge_pictures_have_no_text_and_decode(glyphs):
    samples = make_samples("edge", 30, *glyphs, seed=2)
    assert {sample.text for sample in samples} == {""}
    sizes = {decoded(sample).size for sample in samples}
    assert len(sizes) > 20  # blank pages, noise, combs and ruled pages of all sizes, not one picture again
    assert {sample.variant for sample in samples} == set(EMPTY_PICTURES)  # each says which it is, all drawn


def test_only_pictures_of_several_variants_name_one(glyphs):
    assert {sample.variant for sample in make_samples("number", 5, *glyphs, seed=2)} == {""}


@pytest.mark.parametrize("kind", ["ruled", "colour"])
def test_ruled_pages_and_colour_photos_are_colour_pictures(glyphs, kind):
    pictures = [np.asarray(decoded(sample), np.float32) for sample in make_samples(kind, PICTURES, *glyphs, seed=3)]
    assert all(picture.ndim == 3 and picture.shape[2] == 3 for picture in pictures)
    # blue ink, blue rules, a red margin, tinted paper: some pixels far from grey in most pictures
    colourful = [np.percentile(picture.max(2) - picture.min(2), 99) > 25 for picture in pictures]
    assert sum(colourful) >= PICTURES // 2


def test_a_small_number_is_small_in_a_photo_of_the_promised_size(glyphs):
    for sample in make_samples("small", PICTURES, *glyphs, seed=6):
        picture = decoded(sample).convert("L")
        assert picture.size == SMALL_PHOTO
        grey = np.asarray(picture, np.float32)
        paper = np.asarray(picture.filter(ImageFilter.BoxBlur(25)), np.float32)  # the page's light, not its ink
        ink = np.abs(grey - paper) > 40
        rows, columns = np.flatnonzero(ink.sum(1) > 1), np.flatnonzero(ink.sum(0) > 1)
        height, width = rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1
        digits = len(sample.text)
        # 25-45 px digits (tilted up to 8 degrees): far under a tenth of the photo's height
        assert 15 <= height <= 45 + 0.15 * width and 10 * digits <= width <= 60 * digits, (height, width)


@pytest.mark.parametrize("light", [False, True])
def test_a_tight_crop_has_no_margin_and_its_polarity(light):
    rng = np.random.default_rng(7)
    for digit in (0, 1, 4, 7, 8):
        glyph = mnist_like(digit, rng)
        picture = tight_crop(glyph, rng, light=light)
        assert picture.mode == "L" and TIGHT_SHOWN[0] <= max(picture.size) <= TIGHT_SHOWN[1]
        grey = np.asarray(picture, np.float32)
        # the picture is the glyph's ink and nothing around it: the ink's box, enlarged, matches it pixel for pixel
        rows, columns = np.flatnonzero(glyph.max(1) > 0.1), np.flatnonzero(glyph.max(0) > 0.1)
        box = glyph[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
        ink = np.asarray(Image.fromarray(box).resize(picture.size, Image.BILINEAR))
        assert abs(box.shape[1] / box.shape[0] - picture.size[0] / picture.size[1]) < 0.25
        correlation = np.corrcoef(ink.ravel(), grey.ravel())[0, 1]
        assert correlation > 0.8 if light else correlation < -0.8, (digit, correlation)
        paper, inked = np.percentile(grey, 5 if light else 95), np.percentile(grey, 95 if light else 5)
        assert abs(inked - paper) > 80  # clearly ink on paper, either way round
        for border in (grey[0], grey[-1], grey[:, 0], grey[:, -1]):  # ink reaches every side: no margin
            assert np.abs(border - paper).max() > 0.2 * abs(inked - paper)


def test_a_comb_has_a_box_for_each_glyph():
    rng = np.random.default_rng(8)
    for boxes in range(COMB_DIGITS[0], COMB_DIGITS[1] + 1):
        ink = comb_form([np.zeros((28, 28), np.float32)] * boxes, rng)  # boxes only: count their ticks
        full = np.flatnonzero((ink > 0.5).mean(1) > 0.9)  # rows of the top and bottom lines
        above_bottom = ink[full[full > ink.shape[0] // 2].min() - 2] > 0.5
        ticks = np.count_nonzero(np.diff(above_bottom.astype(int)) == 1) + int(above_bottom[0])
        assert full.min() < ink.shape[0] // 2 and ticks == boxes + 1
    empty = comb_form([], np.random.default_rng(9), boxes=4)  # an empty form, as edge pictures have
    assert np.array_equal(empty, comb_form([np.zeros((28, 28), np.float32)] * 4, np.random.default_rng(9)))


def test_forms_are_dark_ink_on_paper_never_a_board(glyphs):
    for sample in make_samples("comb", PICTURES * 2, *glyphs, seed=11):
        assert np.median(np.asarray(decoded(sample).convert("L"))) > 127


def test_lines_are_stacked_top_to_bottom_in_the_order_of_the_text():
    rng = np.random.default_rng(12)
    for counts in ((2, 6), (5, 3, 4), (6, 2, 2)):
        ink = stack_lines([compose_number([disc()] * count, rng) for count in counts], rng)
        rows = (ink > 0.5).any(1)
        starts = np.flatnonzero(np.diff(np.r_[0, rows.astype(int)]) == 1)
        ends = np.flatnonzero(np.diff(np.r_[rows.astype(int), 0]) == -1) + 1
        assert len(starts) == len(counts)  # one band of ink per line, apart
        drawn = [ndimage.label(ink[start:end] > 0.5)[1] for start, end in zip(starts, ends)]
        assert drawn == list(counts)  # each band holds its line's digits, top line first
