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
    assert stages.ink_is_dark(grey, paper) is dark  # a plain bool for one picture


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


def test_picture_stages_give_each_picture_of_a_stack_what_it_gets_alone():
    rng = np.random.default_rng(2)
    pictures = []
    for dark in (True, False, True):
        grey = np.full((64, 80), 0.75 if dark else 0.2, np.float32) + rng.normal(0, 0.02, (64, 80)).astype(np.float32)
        grey[2:62, 10:70] += (-0.5 if dark else 0.6) * ring(60)
        pictures.append(grey)
    pictures.append(np.full((64, 80), 0.5, np.float32))  # blank
    stack = np.stack(pictures)
    clean = stages.remove_noise(stack)
    paper = stages.estimate_paper(clean)
    dark = stages.ink_is_dark(clean, paper)
    contrast = stages.ink_contrast(clean, paper, dark)
    thresholds, levels = stages.ink_threshold(contrast, 0.1)
    for index, grey in enumerate(pictures):
        alone_clean = stages.remove_noise(grey)
        alone_paper = stages.estimate_paper(alone_clean)
        assert np.allclose(paper[index], alone_paper, atol=1e-5)
        assert stages.ink_is_dark(alone_clean, alone_paper) == dark[index]
        alone = stages.ink_threshold(stages.ink_contrast(alone_clean, alone_paper, dark[index]), 0.1)
        assert alone == pytest.approx((thresholds[index], levels[index]), abs=1e-5)
    assert dark.tolist()[:3] == [True, False, True] and thresholds[3] == np.inf
    # One sort serves the threshold: the contrast's sorted sample comes from the difference's, exactly.
    ordered = stages.sorted_sample(clean - paper)
    shared = stages.contrast_sample(ordered, dark)
    assert np.array_equal(shared, stages.sorted_sample(contrast))
    assert np.array_equal(stages.ink_threshold(contrast, 0.1, shared), (thresholds, levels))


def normalise_one(ink: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return stages.normalise_digits([(ink, mask)])[0]


def test_saturate_blanks_other_ink_and_brings_strokes_to_one():
    contrast = np.zeros((1, 20, 20), np.float32)
    contrast[0, 5:15, 5:8] = 0.5  # the digit
    contrast[0, 5:15, 12:14] = 0.5  # a neighbour inside the same box
    mask = np.zeros((1, 20, 20), bool)
    mask[0, 5:15, 5:8] = True
    ink = stages.saturate(contrast, mask)[0]
    assert ink[5:15, 5:8].min() == pytest.approx(1.0)
    assert ink[:, 12:].max() == 0


def test_stroke_width_of_a_bar_and_a_ring():
    bar = np.zeros((40, 20), bool)
    bar[5:35, 8:11] = True
    assert stroke_width_close(stages.stroke_width(bar), 3)
    assert stroke_width_close(stages.stroke_width(ring(60, width=6) > 0), 6, tolerance=1.5)
    widths = stages.stroke_width(np.stack([bar, np.zeros_like(bar)]))  # per mask of a stack
    assert widths.shape == (2,) and stroke_width_close(widths[0], 3) and widths[1] == 0


def stroke_width_close(value: float, expected: float, tolerance: float = 0.6) -> bool:
    return abs(value - expected) <= tolerance


def test_thicken_grows_a_thin_pen_on_a_large_picture_only():
    thin = ring(200, radius=80, width=2)  # 2 px on 200 px: 0.2 px once in 20x20
    thick = ring(60, radius=20, width=6)
    sizes = np.array([thin.shape, thin.shape])
    stack = np.zeros((2, 200, 200), np.float32)
    stack[0], stack[1, :60, :60] = thin, thick
    sizes[1] = thick.shape
    radii = stages.thickening_radius(stages.stroke_width(stack > 0), sizes)
    assert radii[0] > 0 and radii[1] == 0
    grown, windows = stages.thicken(stack, sizes, radii)
    top, left, height, width = windows[0]
    assert grown[0, top : top + height, left : left + width].sum() > 3 * thin.sum()
    top, left, height, width = windows[1]
    assert np.array_equal(grown[1, top : top + height, left : left + width], thick)  # untouched


@pytest.mark.parametrize("shape", [(80, 20), (6, 12), (37, 53), (20, 20), (300, 120), (13, 9)])
def test_fit_box_keeps_the_aspect_ratio_and_resamples_exactly_as_pillow(shape):
    from PIL import Image

    ink = np.random.default_rng(3).random(shape).astype(np.float32)
    fitted, sizes = stages.fit_box(np.pad(ink, ((2, 5), (1, 3)))[None], np.array([[2, 1, *shape]]))
    scale = 20 / max(shape)
    expected_size = (max(1, round(shape[1] * scale)), max(1, round(shape[0] * scale)))
    method = Image.BOX if scale < 1 else Image.BILINEAR  # small digits are enlarged
    expected = np.asarray(Image.fromarray(ink).resize(expected_size, method), np.float32).clip(0, 1)
    assert tuple(sizes[0]) == expected.shape
    assert np.abs(fitted[0, : expected.shape[0], : expected.shape[1]] - expected).max() < 1e-5
    assert fitted[0].sum() == pytest.approx(expected.sum(), rel=1e-5)  # nothing outside the digit's size


def test_paste_centred_puts_the_centre_of_mass_at_the_middle():
    digit = np.zeros((12, 10), np.float32)
    digit[:3, :] = 1  # mass high up: the box is pushed down, not centred by its middle
    canvas = stages.paste_centred(digit[None])[0]
    ys, xs = np.nonzero(canvas)
    assert canvas.shape == (28, 28) and canvas.sum() == digit.sum()
    assert abs(ys.mean() - 14) <= 0.5 and abs(xs.mean() - 14) <= 0.5
    tall = np.ones((20, 4), np.float32)
    tall[:3] = 10  # would leave the canvas if centred on its mass: clipped at the border instead
    assert stages.paste_centred(tall[None])[0].sum() == pytest.approx(tall.sum())


def test_normalise_digits_gives_mnist_like_images_each_as_it_would_alone():
    crops = [
        (ring(60), ring(60) > 0),
        (ring(200, radius=80, width=2), ring(200, radius=80, width=2) > 0),
        (np.ones((30, 6), np.float32), np.ones((30, 6), bool)),
    ]
    images = stages.normalise_digits(crops)
    assert images.shape == (3, 28, 28) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1
    for image, (ink, mask) in zip(images, crops):
        rows, columns = np.flatnonzero(image.max(1) > 0), np.flatnonzero(image.max(0) > 0)
        assert rows[-1] - rows[0] + 1 <= 21 and columns[-1] - columns[0] + 1 <= 21
        assert np.allclose(image, normalise_one(ink, mask), atol=1e-6)  # a batch of one: the same image
    assert stages.normalise_digits([]).shape == (0, 28, 28)


def test_a_thick_digit_filling_a_small_picture_does_not_fool_the_paper_estimate():
    """A fat 0 covering most of a 28x28 picture: its ring must come out as ink, its hole as paper."""
    grey = np.zeros((28, 28), np.float32)
    grey[2:26, 2:26] = ring(24, radius=8, width=7)
    paper = stages.estimate_paper(grey)
    assert np.abs(paper).max() < 0.05
    assert stages.ink_is_dark(grey, paper) is False


@pytest.mark.parametrize("rows", [3, 40])  # a few rows are sorted, many searched: both must agree with the definition
def test_deviation_statistic_is_the_sorted_deviations_order_statistic(rows):
    """The MAD without a second sort (merge selection over two sorted runs) equals sorting |x - m|, ties included."""
    rng = np.random.default_rng(0)
    for trial in range(60):
        size = int(rng.integers(1, 80))
        values = rng.normal(size=(rows, size)).astype(np.float32)
        if trial % 3 == 0:
            values = np.round(values)  # many ties, as on flat paper
        if trial % 4 == 0:
            values[:, : size // 2] = 0  # MNIST-like: half the pixels exactly zero
        ordered = np.sort(values, axis=1)
        deviations = np.sort(np.abs(ordered - ordered[:, size // 2 : size // 2 + 1]), axis=1)
        for k in {0, size // 2, size - 1}:
            assert np.array_equal(stages._deviation_statistic(ordered, k), deviations[:, k])


def test_pixel_noise_stays_the_noise_when_ink_covers_half_the_picture():
    """The spread of the pixels grows with the ink; the spread of neighbour differences does not."""
    rng = np.random.default_rng(4)
    sigma = 0.03
    filled = np.full((60, 48), 0.2, np.float32)
    filled[:, :24] = 0.8  # half the picture is (smooth) ink
    noisy = filled + rng.normal(0, sigma, filled.shape).astype(np.float32)
    assert stages.pixel_noise_sigmas(noisy) == pytest.approx([sigma], rel=0.15)
    assert stages._noise_sigmas(noisy[None])[0] > 5 * sigma  # why polarity no longer uses the pixels' spread
    stack = np.stack([noisy, np.full_like(noisy, 0.5)])
    assert stages.pixel_noise_sigmas(stack)[1] == 0 and stages.pixel_noise_sigmas(stack)[0] > 0


def test_two_level_share_of_paper_and_ink_and_of_a_spread_of_greys():
    """Otsu's share of the greys' variance between the two classes of the best cut: a blurred stroke on noisy paper
    is two levels (near 1); evenly spread greys give the textbook 3/4 and normal ones 2/pi, whatever their scale."""
    assert stages.two_level_share(np.array([[0.0, 1.0, 2.0]])) == pytest.approx([0.75])  # {0} | {1, 2}: 0.5 / (2/3)
    assert stages.two_level_share(np.array([[0.2, 0.2, 0.7, 0.7], [0.4, 0.4, 0.4, 0.4]])) == pytest.approx([1, 1])
    rng = np.random.default_rng(6)
    stroke = np.full((120, 120), 0.9, np.float32)
    stroke[:, 50:70] = 0.1
    stroke = stages.remove_noise(stroke) + rng.normal(0, 0.01, stroke.shape).astype(np.float32)
    even = np.linspace(0.2, 0.8, 120 * 120, dtype=np.float32).reshape(120, 120)
    normal = rng.normal(0.5, 0.05, (120, 120)).astype(np.float32)
    shares = stages.two_level_share(stages.sorted_sample(np.stack([stroke, even, normal])))
    assert shares[0] > 0.95
    assert shares[1:] == pytest.approx([0.75, 2 / np.pi], abs=0.01)


@pytest.mark.parametrize("dark", [True, False])
def test_polarity_of_a_fat_digit_filling_a_tight_crop_against_its_border_paper(dark):
    """Half the picture is ink: the majority rule cannot tell; the border's paper and the pixel noise can."""
    ink = ring(48, radius=17, width=12)[:, 4:44]  # runs into all four sides, ~45 % of the picture
    grey = np.where(ink > 0, 0.1 if dark else 0.9, 0.9 if dark else 0.1).astype(np.float32)
    grey += np.random.default_rng(5).normal(0, 0.02, grey.shape).astype(np.float32)
    paper = np.full_like(grey, stages.border_median(grey))
    assert abs(stages.border_median(grey) - (0.9 if dark else 0.1)) < 0.05
    assert stages.ink_is_dark(grey, paper) is dark


def test_on_paper_frames_each_picture_of_a_stack_with_its_own_border():
    stack = np.stack([np.full((5, 6), 0.9, np.float32), np.full((5, 6), 0.1, np.float32)])
    stack[:, 2, 2] = 0.5
    framed = stages.on_paper(stack, 3)
    assert framed.shape == (2, 11, 12)
    assert np.array_equal(framed[:, 3:8, 3:9], stack)
    assert np.allclose(framed[0, :3], 0.9) and np.allclose(framed[1, :, :3], 0.1)
    assert stages.on_paper(stack[0], 2).shape == (9, 10)  # one picture: one picture back
