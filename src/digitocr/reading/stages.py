"""The MNIST-style normalisation, one small function per stage (numpy + Pillow only).

Picture side: grey working image -> noise removed -> paper (lighting) estimated -> polarity -> ink contrast
-> adaptive threshold. Digit side: crop -> stroke thickening -> fit into 20x20 keeping the aspect ratio ->
paste into 28x28 on the centre of mass, the recipe MNIST itself was made with (LeCun et al., 1998).
Arrays are float32; ink is high (1) and paper low (0) after ``ink_contrast``, as in MNIST.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from digitocr.config import IMAGE_SIZE

DIGIT_BOX = 20  # MNIST digits fit a 20x20 box inside the 28x28 image
MNIST_STROKE = 2.0  # median MNIST stroke width at that scale, as ``stroke_width`` measures it (5 % are < 1.3)


def remove_noise(grey: np.ndarray) -> np.ndarray:
    """A 3x3 binomial blur: halves sensor noise and JPEG speckle, yet keeps 1-pixel strokes (a median would not)."""
    padded = np.pad(grey, 1, mode="edge")
    rows = padded[:-2] * 0.25 + padded[1:-1] * 0.5 + padded[2:] * 0.25
    return rows[:, :-2] * 0.25 + rows[:, 1:-1] * 0.5 + rows[:, 2:] * 0.25


def estimate_paper(grey: np.ndarray, grid: int = 8) -> np.ndarray:
    """The paper brightness under uneven lighting: a quadratic surface fitted to block medians.

    A block's median is paper wherever ink is the minority of the block; blocks that are mostly ink stand
    out from the smooth surface and are dropped before a second fit. Works for either polarity.
    """
    height, width = grey.shape
    grid = max(1, min(grid, height // 4, width // 4))
    step = max(1, min(height, width) // (grid * 12))  # about 12x12 samples per block are enough for a median
    sample = grey[::step, ::step]
    bh, bw = sample.shape[0] // grid, sample.shape[1] // grid
    if grid == 1 or bh == 0 or bw == 0:
        return np.full_like(grey, np.median(grey))
    blocks = sample[:bh * grid, :bw * grid].reshape(grid, bh, grid, bw).transpose(0, 2, 1, 3).reshape(grid, grid, -1)
    middle = blocks.shape[2] // 2
    medians = np.partition(blocks, middle, axis=2)[:, :, middle].ravel().astype(np.float64)
    centres = (np.arange(grid) + 0.5) / grid * 2 - 1  # block centres in [-1, 1]
    by, bx = np.meshgrid(centres, centres, indexing="ij")
    design = _quadratic_terms(bx.ravel(), by.ravel())
    keep = np.ones(medians.size, bool)
    for _ in range(2):
        chosen = design[keep]
        coefficients = np.linalg.solve(chosen.T @ chosen + 1e-6 * np.eye(6), chosen.T @ medians[keep])
        residual = medians - design @ coefficients
        spread = 1.4826 * np.median(np.abs(residual[keep])) + 0.01
        keep = np.abs(residual) <= 2.5 * spread
        if keep.sum() < 6:
            return np.full_like(grey, np.median(grey))
    ys = np.linspace(-1 + 1 / height, 1 - 1 / height, height, dtype=np.float32)
    xs = np.linspace(-1 + 1 / width, 1 - 1 / width, width, dtype=np.float32)
    c = coefficients.astype(np.float32)
    surface = (c[0] + c[1] * xs[None] + c[2] * ys[:, None] + c[3] * xs[None] ** 2 + c[4] * xs[None] * ys[:, None]
               + c[5] * ys[:, None] ** 2)
    # Past the outer block centres the surface extrapolates; paper is never outside what the blocks saw.
    return np.clip(surface, medians[keep].min(), medians[keep].max())


def _quadratic_terms(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)


def noise_sigma(values: np.ndarray) -> float:
    """Robust standard deviation (median absolute deviation): ink pixels, a minority, barely move it."""
    sample = _subsample(values).ravel()
    middle = sample.size // 2
    deviation = np.abs(sample - np.partition(sample, middle)[middle])
    return float(1.4826 * np.partition(deviation, middle)[middle])


def _subsample(image: np.ndarray, limit: int = 8192) -> np.ndarray:
    """Every k-th row and column, down to about ``limit`` pixels: plenty for medians, far cheaper."""
    step = int(np.ceil(np.sqrt(image.size / limit)))
    return image[::step, ::step] if step > 1 else image


def ink_is_dark(grey: np.ndarray, paper: np.ndarray) -> bool:
    """Which way the ink goes: the side with more signal beyond the noise is the minority, i.e. ink.

    Judged on the whole picture against the estimated paper, not from a corner, so a dark border, a
    shadow or a digit touching the edge does not flip it.
    """
    difference = grey - paper
    beyond = 3 * noise_sigma(difference) + 0.02
    dark = np.clip(-difference - beyond, 0, None).sum()
    light = np.clip(difference - beyond, 0, None).sum()
    return bool(dark >= light)


def ink_contrast(grey: np.ndarray, paper: np.ndarray, dark_ink: bool) -> np.ndarray:
    """How far each pixel is from the paper towards the ink: lighting removed, ink high, paper 0."""
    difference = paper - grey if dark_ink else grey - paper
    return np.clip(difference, 0, None).astype(np.float32)


def ink_threshold(contrast: np.ndarray, min_contrast: float) -> tuple[float, float]:
    """(threshold, ink level) separating ink from paper; the level is 0 when there is no ink.

    Adaptive twice over: the lighting is already removed, and the cut sits at a fraction of this picture's
    own ink strength but never within the noise (5 sigma above it).
    """
    flat = _subsample(contrast, limit=32768).ravel()
    top = int(0.997 * (flat.size - 1))
    level = float(np.partition(flat, top)[top])  # the 99.7th percentile, without np.percentile's overhead
    if level < min_contrast:
        level = float(contrast.max())  # a small digit on a large page covers < 0.3 % of it
        if level < min_contrast:
            return np.inf, 0.0
    sigma = noise_sigma(contrast)
    threshold = max(5 * sigma, 0.3 * level, min_contrast / 2)
    if threshold >= level:
        return np.inf, 0.0
    return threshold, level


def crop_digit(contrast: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The digit's ink inside ``box`` (x0, y0, x1, y1), other ink blanked, scaled so its strokes reach 1."""
    x0, y0, x1, y1 = box
    keep = _dilate(mask)  # one pixel of margin keeps the anti-aliased edge of the strokes
    ink = contrast[y0:y1, x0:x1] * keep
    strong = ink[mask]
    level = float(np.percentile(strong, 50)) if strong.size else 1.0
    return np.clip(ink / max(level, 1e-6), 0, 1)


def _dilate(mask: np.ndarray) -> np.ndarray:
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    return grown


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels: a stroke of width w and length L has area wL and about 2L of outline."""
    area = mask.sum()
    if area == 0:
        return 0.0
    padded = np.pad(mask, 1)
    outline = np.count_nonzero(padded[1:] != padded[:-1]) + np.count_nonzero(padded[:, 1:] != padded[:, :-1])
    return float(2 * area / max(outline, 1))


def thicken(ink: np.ndarray, width: float) -> np.ndarray:
    """Grow strokes that would come out thinner than MNIST's once the digit is scaled into 20x20.

    A thin pen on a large picture gives 1-pixel lines after scaling, which an MNIST model has never seen.
    """
    scale = DIGIT_BOX / max(ink.shape)
    missing = MNIST_STROKE - width * scale  # in 20x20 pixels
    radius = int(np.ceil(missing / (2 * scale))) if missing > 0.5 else 0
    if radius == 0:
        return ink
    grown = Image.fromarray(np.pad(ink, radius).astype(np.float32)).filter(ImageFilter.MaxFilter(2 * radius + 1))
    return np.asarray(grown, dtype=np.float32)


def fit_box(ink: np.ndarray, box: int = DIGIT_BOX) -> np.ndarray:
    """Scale so the longer side is ``box`` pixels, keeping the aspect ratio, anti-aliased."""
    height, width = ink.shape
    scale = box / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    method = Image.BOX if scale < 1 else Image.BILINEAR  # BOX averages all source pixels when shrinking
    scaled = Image.fromarray(np.ascontiguousarray(ink, dtype=np.float32)).resize(size, method)
    return np.asarray(scaled, dtype=np.float32).clip(0, 1)


def paste_centred(digit: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """Paste into a size x size canvas so the centre of mass sits at the centre, as MNIST was made."""
    canvas = np.zeros((size, size), np.float32)
    height, width = digit.shape
    total = digit.sum()
    if total <= 0:
        return canvas
    cy = (digit.sum(1) * np.arange(height)).sum() / total
    cx = (digit.sum(0) * np.arange(width)).sum() / total
    # MNIST puts the centre of mass at pixel (14, 14); the box never leaves the canvas.
    top = int(np.clip(round(size / 2 - cy), 0, size - height))
    left = int(np.clip(round(size / 2 - cx), 0, size - width))
    canvas[top:top + height, left:left + width] = digit
    return canvas


def normalise_digit(ink: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A cropped digit (ink in [0, 1] and its mask) -> the 28x28 image the model sees."""
    return paste_centred(fit_box(thicken(ink, stroke_width(mask))))
