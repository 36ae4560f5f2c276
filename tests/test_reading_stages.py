"""Each normalisation stage on small synthetic arrays (fast, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from digitocr.reading import stages


def ring(size: int = 60, radius: float = 18, width: float = 4) -> np.ndarray:
    """A '0'-like ring: float32 ink in [0, 1]."""
    ys, xs = np.mgrid[0:size, 0:size]
    distance = np.hypot(ys - size / 2, xs - size / 2)
    return (np.abs(distance - radius) < width / 2).astype(np.float32)


def test_remove_noise_halves_noise_but_keeps_a_one_pixel_line():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.1, (64, 64)).astype(np.float32)
    assert stages.remove_noise(noise).std() < 0.5 * noise.std()
    line = np.zeros((32, 32), np.float32)
    line[:, 16] = 1
    assert stages.remove_noise(line)[:, 16].min() >= 0.5  # a median filter would erase it


def test_estimate_paper_follows_a_lighting_gradient_under_the_ink():
    height, width = 120, 160
    ys, xs = np.mgrid[0:height, 0:width]
    paper = (0.5 + 0.4 * xs / width + 0.1 * (ys / height) ** 2).astype(np.float32)
    grey = paper.copy()
    grey[30:90, 50:110] -= 0.4 * ring(60)  # dark ink
    estimate = stages.estimate_paper(grey)
    assert np.abs(estimate - paper).max() < 0.05


@pytest.mark.parametrize("dark", [True, False])
def test_ink_polarity_is_the_minority_whatever_the_corners(dark):
    grey = np.full((80, 80), 0.8 if dark else 0.2, np.float32)
    grey[10:70, 10:70] += (-0.6 if dark else 0.6) * ring(60)
    grey[:12, :12] = 0.2 if dark else 0.8  # a corner of the opposite colour must not decide
    paper = stages.estimate_paper(grey)
    assert stages.ink_is_dark(grey, paper) is dark


def test_ink_contrast_removes_lighting_and_puts_ink_high():
    grey = np.linspace(0.6, 0.9, 50, dtype=np.float32)[None].repeat(50, 0)
    grey[20:30, 20:30] -= 0.4
    contrast = stages.ink_contrast(grey, stages.estimate_paper(grey), dark_ink=True)
    assert contrast[22:28, 22:28].min() > 0.3
    assert contrast[:10].max() < 0.05


def test_threshold_finds_no_ink_on_noisy_blank_paper_and_separates_real_ink():
    rng = np.random.default_rng(1)
    blank = np.abs(rng.normal(0, 0.02, (100, 100))).astype(np.float32)
    assert stages.ink_threshold(stages.remove_noise(blank), min_contrast=0.1) == (np.inf, 0.0)
    inked = blank.copy()
    inked[20:80, 20:80] += 0.7 * ring(60)
    threshold, level = stages.ink_threshold(inked, min_contrast=0.1)
    assert 0.05 < threshold < 0.5 and level > 0.6


def test_crop_digit_blanks_other_ink_and_saturates_strokes():
    contrast = np.zeros((20, 20), np.float32)
    contrast[5:15, 5:8] = 0.5  # the digit
    contrast[5:15, 12:14] = 0.5  # a neighbour inside the same box
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:8] = True
    ink = stages.crop_digit(contrast, mask, (0, 0, 20, 20))
    assert ink[5:15, 5:8].min() == pytest.approx(1.0)
    assert ink[:, 12:].max() == 0


def test_stroke_width_of_a_bar_and_a_ring():
    bar = np.zeros((40, 20), bool)
    bar[5:35, 8:11] = True
    assert stroke_width_close(stages.stroke_width(bar), 3)
    assert stroke_width_close(stages.stroke_width(ring(60, width=6) > 0), 6, tolerance=1.5)


def stroke_width_close(value: float, expected: float, tolerance: float = 0.6) -> bool:
    return abs(value - expected) <= tolerance


def test_thicken_grows_a_thin_pen_on_a_large_picture_only():
    thin = ring(200, radius=80, width=2)  # 2 px on 200 px: 0.2 px once in 20x20
    thick = ring(60, radius=20, width=6)
    assert stages.thicken(thin, stages.stroke_width(thin > 0)).sum() > 3 * thin.sum()
    assert stages.thicken(thick, stages.stroke_width(thick > 0)) is thick


def test_fit_box_keeps_the_aspect_ratio():
    assert stages.fit_box(np.ones((80, 20), np.float32)).shape == (20, 5)
    assert stages.fit_box(np.ones((6, 12), np.float32)).shape == (10, 20)  # small digits are enlarged
    assert stages.fit_box(np.ones((80, 20), np.float32)).max() <= 1


def test_paste_centred_puts_the_centre_of_mass_at_the_middle():
    digit = np.zeros((12, 10), np.float32)
    digit[:3, :] = 1  # mass high up: the box is pushed down, not centred by its middle
    canvas = stages.paste_centred(digit)
    ys, xs = np.nonzero(canvas)
    assert canvas.shape == (28, 28) and canvas.sum() == digit.sum()
    assert abs(ys.mean() - 14) <= 0.5 and abs(xs.mean() - 14) <= 0.5
    tall = np.ones((20, 4), np.float32)
    tall[:3] = 10  # would leave the canvas if centred on its mass: clipped at the border instead
    assert stages.paste_centred(tall).sum() == pytest.approx(tall.sum())


def test_normalise_digit_gives_an_mnist_like_image():
    image = stages.normalise_digit(ring(60), ring(60) > 0)
    assert image.shape == (28, 28) and image.dtype == np.float32
    assert 0 <= image.min() and image.max() <= 1
    rows, columns = np.flatnonzero(image.max(1) > 0), np.flatnonzero(image.max(0) > 0)
    assert rows[-1] - rows[0] + 1 <= 21 and columns[-1] - columns[0] + 1 <= 21
