"""The MNIST-style normalisation, one small function per stage (numpy only), each working on a whole stack.

Picture side, on grey working images ``(..., H, W)`` (one picture or a stack of same-sized ones): noise
removed -> paper (lighting) estimated -> polarity -> ink contrast -> adaptive threshold. Per-picture answers
come back with the stack's leading shape, or as plain numbers for a single 2-D picture.

Digit side, on a batch of cropped digits: strokes saturated -> thickened where too thin -> fitted into 20x20
keeping the aspect ratio -> pasted into 28x28 on the centre of mass, the recipe MNIST itself was made with
(LeCun et al., 1998). Crops of any sizes are padded into one stack and every step is one vectorised pass,
so reading 1,000 pictures costs little more than reading one; one picture is a batch of one.

Arrays are float32; ink is high (1) and paper low (0) after ``ink_contrast``, as in MNIST.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from digitocr.config import DIGIT_BOX, IMAGE_SIZE

# --- the numbers that decide what is ink ---------------------------------------------------------------------
# "Not tuned": the value the first reader (2026-11-25) set, never measured against another since;
# benchmarks/reading_accuracy.py (every category) is the measure to change one by.
MAD_TO_SIGMA = 1.4826  # median absolute deviation -> standard deviation for normal noise (1 / Phi^-1(3/4))
# Pixels sampled per picture for its medians and percentiles: the same answers as all pixels, in less time
# (commits 7b7f67d; 4e841fc, from 8,192 for the noise: accuracy figures unchanged, one canvas misread rejected).
STATISTICS_SAMPLE_PIXELS = 32768

# The paper under uneven light (``estimate_paper``): a quadratic surface fitted to block medians.
PAPER_GRID = 8  # blocks per side fitted: a smooth light needs few, each must be mostly paper; not tuned
# Blocks of at least 8x8 pixels, and at least 4 per side, so a picture under ~32 pixels (MNIST-sized) has no
# lighting to fit and its border is its paper: a fat digit fooled the fit there (commit 148e0ef, 4x4-pixel blocks
# before; MNIST digits read back 97.7 % vs 98.0 % fed directly).
MIN_BLOCK_SIDE = 8
MIN_LIGHTING_GRID = 4
SAMPLES_PER_BLOCK = 12  # about 12x12 samples per block suffice for a median; not tuned
QUADRATIC_TERMS = 6  # 1, x, y, x^2, xy, y^2
MIN_PAPER_BLOCKS = QUADRATIC_TERMS  # fewer paper blocks left cannot fit the surface: take the picture's median
PAPER_FIT_ROUNDS = 2  # fit, drop the blocks that stand out (mostly ink), fit again; not tuned
PAPER_OUTLIER_SPREADS = 2.5  # a block further from the surface than this many robust sigmas is ink; not tuned
PAPER_SPREAD_FLOOR = 0.01  # the least spread (of full range): a perfectly flat paper keeps its blocks; not tuned
NORMAL_EQUATIONS_RIDGE = 1e-6  # keeps the least squares solvable when few blocks are kept; no effect otherwise

# Polarity and threshold (``ink_is_dark``, ``ink_threshold``), in noise sigmas and shares of full range.
# Signal counts towards a polarity only beyond 3 sigmas of the pixel noise (0.13 % of normal noise) and 2 % of full
# range: noise on both sides then weighs nothing; not tuned.
POLARITY_NOISE_SIGMAS = 3
POLARITY_MARGIN = 0.02
# The picture's ink level is the contrast only its strongest 0.3 % of pixels reach: within the strokes wherever
# the digits cover more of the picture (else its strongest pixel is the level); not tuned.
INK_LEVEL_QUANTILE = 0.997
THRESHOLD_INK_SHARE = 0.3  # the cut at this share of the picture's own ink level: faint pen or marker; not tuned
THRESHOLD_NOISE_SIGMAS = 5  # ... but never within 5 noise sigmas (3e-7 of normal noise pixels pass); not tuned
THRESHOLD_FLOOR_SHARE = 0.5  # ... nor under half of ``ReadingConfig.min_contrast``; not tuned
# ... nor within this many of the denoised picture's pixel noise sigmas (``noise_floor``). The noise term above is
# the spread of the contrast, which in a picture of mostly paper is half zeros (paper is clipped at 0): it came to
# about nothing, and a picture of pure noise passed its threshold in specks the line reader read as digits. The
# per-pixel sigma that neighbour differences of the denoised picture imply is 0.58 of its own for white noise, so 6
# of them are 3.5 sigmas (3e-4 of noise pixels pass). On a tight crop's framed picture (``candidates.ink_and_crops``)
# the flat frame's differences are zeros and the floor comes out far lower: crops are read nearly as before. Chosen on
# validation pictures (2026-12-04, the 24-epoch line reader): no digits 93.0 -> 96.0 %, tight crops light on dark
# 89.3 -> 89.7 %, the rest unchanged; 8.7 (5 sigmas) lost 1.7 points of tight crops.
THRESHOLD_PIXEL_NOISE_SIGMAS = 6.0

# Thickening thin strokes (``thickening_radius``), in 20x20-box pixels.
MNIST_STROKE = 2.0  # median MNIST stroke width at that scale, as ``stroke_width`` measures it (5 % are < 1.3)
MIN_MISSING_STROKE = 0.5  # strokes are grown only when more than this thinner than MNIST's median; not tuned


# --- picture side -------------------------------------------------------------------------------------------


def _stack(array: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """(..., H, W) -> (N, H, W) and the leading shape to give per-picture answers back in."""
    return array.reshape(-1, *array.shape[-2:]), array.shape[:-2]


def _per_picture(values: np.ndarray, lead: tuple[int, ...]):
    """Per-picture values in the caller's shape: a plain Python number for a single 2-D picture."""
    return values.reshape(lead) if lead else values.reshape(()).item()


def _pad_last_two(array: np.ndarray, width: int, mode: str = "constant") -> np.ndarray:
    return np.pad(array, [(0, 0)] * (array.ndim - 2) + [(width, width), (width, width)], mode=mode)


def remove_noise(grey: np.ndarray) -> np.ndarray:
    """A 3x3 binomial blur: halves sensor noise and JPEG speckle, yet keeps 1-pixel strokes (a median would not)."""
    padded = _pad_last_two(grey, 1, mode="edge")
    rows = padded[..., :-2, :] * 0.25 + padded[..., 1:-1, :] * 0.5 + padded[..., 2:, :] * 0.25
    return rows[..., :-2] * 0.25 + rows[..., 1:-1] * 0.5 + rows[..., 2:] * 0.25


def estimate_paper(grey: np.ndarray, grid: int = PAPER_GRID) -> np.ndarray:
    """The paper brightness under uneven lighting: a quadratic surface fitted to block medians.

    A block's median is paper wherever ink is the minority of the block; blocks that are mostly ink stand
    out from the smooth surface and are dropped before a second fit. Works for either polarity. All
    pictures of a stack are fitted at once (batched normal equations, masks instead of dropped rows).
    """
    stack, _ = _stack(grey)
    count, height, width = stack.shape
    grid = min(grid, height // MIN_BLOCK_SIDE, width // MIN_BLOCK_SIDE)
    step = max(1, min(height, width) // (max(grid, 1) * SAMPLES_PER_BLOCK))
    sample = stack[:, ::step, ::step]
    # A picture under ~32 pixels (MNIST-sized, a crop) has no lighting to model, and a thick digit would cover
    # most of its few blocks: its paper is the median of its border, all four sides (a digit may touch one).
    if grid < MIN_LIGHTING_GRID:
        flat = border_median(stack)
        return np.broadcast_to(flat[:, None, None], stack.shape).reshape(grey.shape).copy()
    bh, bw = sample.shape[1] // grid, sample.shape[2] // grid
    blocks = (
        sample[:, : bh * grid, : bw * grid]
        .reshape(count, grid, bh, grid, bw)
        .transpose(0, 1, 3, 2, 4)
        .reshape(count, grid * grid, -1)
    )
    medians = _order_statistic(blocks, blocks.shape[2] // 2).astype(np.float64)  # (N, grid * grid)
    centres = (np.arange(grid) + 0.5) / grid * 2 - 1  # block centres in [-1, 1]
    by, bx = np.meshgrid(centres, centres, indexing="ij")
    design = _quadratic_terms(bx.ravel(), by.ravel())  # (grid * grid, QUADRATIC_TERMS)
    keep = np.ones(medians.shape, bool)
    too_few = np.zeros(count, bool)
    for _ in range(PAPER_FIT_ROUNDS):
        weights = keep.astype(np.float64)
        normal = np.einsum("nk,ki,kj->nij", weights, design, design) + NORMAL_EQUATIONS_RIDGE * np.eye(QUADRATIC_TERMS)
        coefficients = np.linalg.solve(normal, np.einsum("nk,ki->ni", weights * medians, design)[..., None])[..., 0]
        residual = np.abs(medians - coefficients @ design.T)
        spread = MAD_TO_SIGMA * masked_median(residual, keep) + PAPER_SPREAD_FLOOR
        keep = residual <= PAPER_OUTLIER_SPREADS * spread[:, None]
        too_few |= keep.sum(1) < MIN_PAPER_BLOCKS
    c = coefficients.astype(np.float32)[:, :, None, None]
    ys = np.linspace(-1 + 1 / height, 1 - 1 / height, height, dtype=np.float32)[:, None]
    xs = np.linspace(-1 + 1 / width, 1 - 1 / width, width, dtype=np.float32)[None]
    surface = c[:, 0] + c[:, 1] * xs + c[:, 2] * ys + c[:, 3] * xs**2 + c[:, 4] * xs * ys + c[:, 5] * ys**2
    # Past the outer block centres the surface extrapolates; paper is never outside what the blocks saw.
    low = np.where(keep, medians, np.inf).min(1).astype(np.float32)
    high = np.where(keep, medians, -np.inf).max(1).astype(np.float32)
    surface = np.clip(surface, low[:, None, None], high[:, None, None])
    if too_few.any():  # no smooth paper to be found: take the picture's median brightness
        surface[too_few] = np.median(stack[too_few].reshape(int(too_few.sum()), -1), axis=1)[:, None, None]
    return surface.reshape(grey.shape)


def border_median(grey: np.ndarray):
    """The median of each picture's outermost pixels, all four sides: its paper wherever ink reaches the border
    only here and there (a stroke that runs off one side, a digit cropped tight), whichever the paper's colour."""
    stack, lead = _stack(grey)
    border = np.concatenate([stack[:, 0], stack[:, -1], stack[:, 1:-1, 0], stack[:, 1:-1, -1]], axis=1)
    return _per_picture(np.median(border, axis=1).astype(np.float32), lead)


def on_paper(grey: np.ndarray, margin: int) -> np.ndarray:
    """Each picture (..., H, W) framed by ``margin`` pixels of its own paper (``border_median``) on every side."""
    stack, lead = _stack(grey)
    framed = np.empty((len(stack), stack.shape[1] + 2 * margin, stack.shape[2] + 2 * margin), stack.dtype)
    framed[:] = np.asarray(border_median(stack), stack.dtype).reshape(-1, 1, 1)
    framed[:, margin : margin + stack.shape[1], margin : margin + stack.shape[2]] = stack
    return framed.reshape(*lead, *framed.shape[1:])


def centre_on_majority(paper: np.ndarray, ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The paper surface moved to the picture's majority: its median pixel is paper, as ink is always the minority
    (``ReadingConfig.max_ink_fraction``). Where the blocks were mostly ink (a tight crop that the digit fills, no
    margin of paper), their fit lies between ink and paper and takes the wrong side for ink; elsewhere the median
    is already on the surface and this moves it by the noise. ``ordered``: ``sorted_sample(grey - paper)``,
    returned moved with it."""
    stack, _ = _stack(paper)
    shift = ordered[:, ordered.shape[1] // 2]  # (N,) the median of grey - paper
    return (stack + shift[:, None, None]).reshape(paper.shape), ordered - shift[:, None]


def _quadratic_terms(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)


def masked_median(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Median of each row's kept values (N, K) -> (N,), as np.median would give for each row alone."""
    ordered = np.sort(np.where(keep, values, np.inf), axis=1)
    kept = np.maximum(keep.sum(1), 1)
    low = np.take_along_axis(ordered, ((kept - 1) // 2)[:, None], axis=1)[:, 0]
    high = np.take_along_axis(ordered, (kept // 2)[:, None], axis=1)[:, 0]
    return np.where(keep.any(1), (low + high) / 2, 0.0)


def _order_statistic(values: np.ndarray, k: int) -> np.ndarray:
    """The k-th smallest along the last axis. Sorting, not np.partition: partition degrades badly on rows
    with many equal values (a flat canvas background, MNIST's zeros): 30x slower than a sort there."""
    return np.sort(values, axis=-1)[..., k]


def _subsample(stack: np.ndarray, limit: int = STATISTICS_SAMPLE_PIXELS) -> np.ndarray:
    """Every k-th row and column of each picture, down to about ``limit`` pixels each -> (N, pixels).

    Plenty for medians and percentiles, far cheaper than all pixels of a large picture.
    """
    step = int(np.ceil(np.sqrt(stack.shape[1] * stack.shape[2] / limit)))
    sample = stack[:, ::step, ::step] if step > 1 else stack
    return sample.reshape(len(sample), -1)


def sorted_sample(values: np.ndarray) -> np.ndarray:
    """Each picture's pixels (..., H, W), subsampled (``_subsample``) and sorted -> (N, P): what the noise and
    percentile statistics below are read from. Computed once by a caller, it serves several of them."""
    stack, _ = _stack(values)
    return np.sort(_subsample(stack), axis=1)


def pixel_noise_sigmas(values: np.ndarray) -> np.ndarray:
    """Each picture's noise sigma from the differences of horizontal neighbours (N,): what varies from one pixel
    to the next is noise, while strokes, paper and lighting are wider than a pixel and only their edges count,
    a minority the median ignores (the finest-scale detail of Donoho's wavelet estimate). Unlike the spread of
    the pixels themselves, it stays the noise when ink covers half the picture (a digit cropped tight)."""
    stack, _ = _stack(values)
    step = int(np.ceil(np.sqrt(stack.shape[1] * stack.shape[2] / STATISTICS_SAMPLE_PIXELS)))
    steps = np.diff(stack[:, ::step], axis=2).reshape(len(stack), -1)  # whole rows: neighbours stay neighbours
    if steps.shape[1] == 0:  # one pixel wide: nothing to compare
        return np.zeros(len(stack))
    ordered = np.sort(steps, axis=1)
    # A difference of two independent pixels has sqrt(2) times their sigma.
    return MAD_TO_SIGMA * _deviation_statistic(ordered, ordered.shape[1] // 2) / np.sqrt(2)


def _noise_sigmas(stack: np.ndarray, ordered: np.ndarray | None = None) -> np.ndarray:
    """Each picture's robust noise sigma; ``ordered``: its ``sorted_sample``, when the caller has it."""
    if ordered is None:
        ordered = sorted_sample(stack)
    return MAD_TO_SIGMA * _deviation_statistic(ordered, ordered.shape[1] // 2)


def _deviation_statistic(ordered: np.ndarray, k: int) -> np.ndarray:
    """The k-th smallest |x - m| of each sorted row (N, P), m its element P // 2: the median absolute deviation
    for k = P // 2, without sorting the deviations.

    Left of m the deviations m - x rise leftwards, right of m the deviations x - m rise rightwards: two sorted
    runs, and the k-th smallest of two sorted runs is found by binary search on how many come from the left
    one (the classic merge selection), for all rows at once.
    """
    count, size = ordered.shape
    middle = size // 2
    centre = ordered[:, middle : middle + 1]
    if count < 32:  # a few pictures: one sort costs less than the search's dozens of small numpy calls
        return np.sort(np.abs(ordered - centre), axis=1)[:, k]
    left = (centre - ordered[:, :middle])[:, ::-1]  # ascending, ``middle`` values
    right = ordered[:, middle:] - centre  # ascending, size - middle values, the first is 0
    if middle == 0:  # a single value: its deviation is the only one
        return right[:, k]
    rows = np.arange(count)
    # Take i from the left run and k + 1 - i from the right; the right i satisfies left[i - 1] <= right[k + 1 - i].
    low = np.full(count, max(0, k + 1 - right.shape[1]))
    high = np.full(count, min(k + 1, middle))
    while (low < high).any():
        i = (low + high + 1) // 2
        fits = left[rows, np.maximum(i - 1, 0)] <= right[rows, np.minimum(k + 1 - i, right.shape[1] - 1)]
        active = low < high
        low = np.where(active & fits, i, low)
        high = np.where(active & ~fits, i - 1, high)
    from_left = np.where(low > 0, left[rows, np.maximum(low - 1, 0)], -np.inf)
    from_right = np.where(k - low >= 0, right[rows, np.clip(k - low, 0, right.shape[1] - 1)], -np.inf)
    return np.maximum(from_left, from_right)


def ink_is_dark(grey: np.ndarray, paper: np.ndarray):
    """Which way the ink goes: the side with more signal beyond the noise is the minority, i.e. ink.

    Judged on the whole picture against the estimated paper, not from a corner, so a dark border, a
    shadow or a digit touching the edge does not flip it. The noise is the pixels' own (``pixel_noise_sigmas``):
    the spread of the difference, which the threshold uses, grows with the ink, and where ink covers half the
    picture it swallowed both sides, which then tied (light ink on a tight crop read as dark: 24 % read).
    """
    difference, lead = _stack(grey - paper)
    beyond = (POLARITY_NOISE_SIGMAS * pixel_noise_sigmas(difference) + POLARITY_MARGIN)[:, None, None]
    # Squared: ink is far from the paper, a background's own shading near it, so a digit filling a tight crop
    # outweighs the dark quarter of its background (summed plainly, the background's area won: 7-11 % read).
    dark = (np.clip(-difference - beyond, 0, None) ** 2).sum((1, 2))
    light = (np.clip(difference - beyond, 0, None) ** 2).sum((1, 2))
    return _per_picture(dark >= light, lead)


def ink_contrast(grey: np.ndarray, paper: np.ndarray, dark_ink) -> np.ndarray:
    """How far each pixel is from the paper towards the ink: lighting removed, ink high, paper 0.

    ``dark_ink``: one bool, or one per picture of a stack.
    """
    difference = np.where(np.asarray(dark_ink)[..., None, None], paper - grey, grey - paper)
    return np.clip(difference, 0, None).astype(np.float32)


def contrast_sample(ordered_difference: np.ndarray, dark_ink) -> np.ndarray:
    """``sorted_sample`` of ``ink_contrast(grey, paper, dark_ink)`` from ``sorted_sample(grey - paper)``, with no
    second sort: the contrast is the difference, negated for dark ink, clipped at 0, and both keep the order."""
    dark = np.asarray(dark_ink).reshape(-1, 1)
    return np.clip(np.where(dark, -ordered_difference[:, ::-1], ordered_difference), 0, None)


def ink_threshold(contrast: np.ndarray, min_contrast: float, ordered: np.ndarray | None = None):
    """(threshold, ink level) separating ink from paper, per picture; no ink: (inf, 0).

    Adaptive twice over: the lighting is already removed, and the cut sits at a fraction of this picture's
    own ink strength but never within the noise (``THRESHOLD_NOISE_SIGMAS`` above it). ``ordered``:
    ``sorted_sample(contrast)`` (or ``contrast_sample``), when the caller has it.
    """
    stack, lead = _stack(contrast)
    if ordered is None:
        ordered = sorted_sample(stack)
    level = ordered[:, int(INK_LEVEL_QUANTILE * (ordered.shape[1] - 1))]
    # A small digit on a large page covers < 0.3 % of it: then the strongest pixel is the ink level.
    level = np.where(level < min_contrast, stack.max((1, 2)), level).astype(np.float64)
    noise = THRESHOLD_NOISE_SIGMAS * _noise_sigmas(stack, ordered)
    threshold = np.maximum(np.maximum(noise, THRESHOLD_INK_SHARE * level), THRESHOLD_FLOOR_SHARE * min_contrast)
    no_ink = (level < min_contrast) | (threshold >= level)
    threshold, level = np.where(no_ink, np.inf, threshold), np.where(no_ink, 0.0, level)
    return _per_picture(threshold, lead), _per_picture(level, lead)


def two_level_share(ordered: np.ndarray) -> np.ndarray:
    """How far each picture's pixels are two levels, paper and ink (N,; 0-1), from its ``sorted_sample`` (N, P):
    the share of their variance between the two classes of the best cut (Otsu, 1979), over every cut of the
    sorted values at once. Writing is near 1 however blurred its edges; a smooth spread of greys (shading, a
    texture) is not two levels: 0.75 for evenly spread values, 0.64 for normal ones."""
    values = ordered.astype(np.float64)
    count = values.shape[1]
    if count < 2:
        return np.ones(len(values))
    below = np.arange(1, count)  # values left of each cut
    sums = np.cumsum(values, axis=1)[:, :-1]
    total = sums[:, -1:] + values[:, -1:]
    means_below, means_above = sums / below, (total - sums) / (count - below)
    between = below * (count - below) / count**2 * (means_below - means_above) ** 2
    spread = values.var(axis=1)
    return np.where(spread > 0, between.max(axis=1) / np.maximum(spread, 1e-12), 1.0)


def noise_floor(clean: np.ndarray) -> np.ndarray:
    """Each denoised picture's (N, H, W) least ink contrast that is not noise (``THRESHOLD_PIXEL_NOISE_SIGMAS``)."""
    return THRESHOLD_PIXEL_NOISE_SIGMAS * pixel_noise_sigmas(clean)


# --- digit side ---------------------------------------------------------------------------------------------


def stroke_width(mask: np.ndarray):
    """Mean stroke width in pixels, per mask: a stroke of width w and length L has area wL and about 2L of outline."""
    stack, lead = _stack(np.asarray(mask, bool))
    area = stack.sum((1, 2))
    padded = _pad_last_two(stack, 1)
    outline = np.count_nonzero(padded[:, 1:] != padded[:, :-1], axis=(1, 2)) + np.count_nonzero(
        padded[:, :, 1:] != padded[:, :, :-1], axis=(1, 2)
    )
    return _per_picture(np.where(area > 0, 2 * area / np.maximum(outline, 1), 0.0), lead)


def stack_crops(crops: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crops of any sizes, (contrast (h, w), mask (h, w)) each -> zero-padded stacks (M, H, W) and sizes (M, 2)."""
    sizes = np.array([mask.shape for _, mask in crops], np.int64).reshape(-1, 2)
    height, width = sizes.max(0) if len(crops) else (1, 1)
    contrast = np.zeros((len(crops), height, width), np.float32)
    masks = np.zeros((len(crops), height, width), bool)
    for index, (ink, mask) in enumerate(crops):
        contrast[index, : mask.shape[0], : mask.shape[1]] = ink
        masks[index, : mask.shape[0], : mask.shape[1]] = mask
    return contrast, masks, sizes


def saturate(contrast: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Each digit's own ink (M, H, W), other ink blanked, scaled so that its typical stroke pixel reaches 1.

    One pixel of margin around the mask keeps the anti-aliased edge of the strokes; the level is the median
    ink of the mask's pixels, so a faint pen and a marker both come out as MNIST's saturated strokes.
    """
    flat_masks = masks.reshape(len(masks), -1)
    level = np.where(flat_masks.any(1), masked_median(contrast.reshape(len(masks), -1), flat_masks), 1.0)
    return np.clip(contrast * _dilate(masks) / np.maximum(level, 1e-6)[:, None, None], 0, 1).astype(np.float32)


def _dilate(mask: np.ndarray) -> np.ndarray:
    grown = mask.copy()
    grown[..., 1:, :] |= mask[..., :-1, :]
    grown[..., :-1, :] |= mask[..., 1:, :]
    grown[..., :, 1:] |= mask[..., :, :-1]
    grown[..., :, :-1] |= mask[..., :, 1:]
    return grown


def thickening_radius(widths: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Pixels to grow each digit's strokes by, so none comes out thinner than MNIST's once scaled into 20x20.

    A thin pen on a large picture gives 1-pixel lines after scaling, which an MNIST model has never seen.
    """
    scale = DIGIT_BOX / np.maximum(sizes.max(1), 1)
    missing = MNIST_STROKE - np.asarray(widths) * scale  # in 20x20 pixels
    return np.where(missing > MIN_MISSING_STROKE, np.ceil(missing / (2 * scale)), 0).astype(np.int64)


def thicken(ink: np.ndarray, sizes: np.ndarray, radii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grow each digit's strokes by its radius (a square max filter) -> (ink with room for it, windows).

    ``windows`` (M, 4) is where each digit now lies in the returned stack: top, left, height, width.
    """
    margin = int(radii.max(initial=0))
    windows = np.concatenate([np.full((len(ink), 2), margin) - radii[:, None], sizes + 2 * radii[:, None]], axis=1)
    if margin == 0:
        return ink, windows
    grown = _pad_last_two(ink, margin)
    for step in range(1, margin + 1):  # a 3x3 max r times is a (2r+1)x(2r+1) max
        chosen = np.flatnonzero(radii >= step)
        part = grown[chosen]
        part[:, 1:] = np.maximum(part[:, 1:], part[:, :-1].copy())
        part[:, :-1] = np.maximum(part[:, :-1], part[:, 1:].copy())
        part[:, :, 1:] = np.maximum(part[:, :, 1:], part[:, :, :-1].copy())
        part[:, :, :-1] = np.maximum(part[:, :, :-1], part[:, :, 1:].copy())
        grown[chosen] = part
    return grown, windows


# Measured 2026-12-02 (benchmarks/library_swaps.py): PIL resize per crop reads 1,000 MNIST-sized pictures 1.2x slower
# (the fitting 5x), one picture 1-8 % faster (Pillow wins under ~12 crops); cv2.resize changes some readings.
def fit_box(ink: np.ndarray, windows: np.ndarray, box: int = DIGIT_BOX) -> tuple[np.ndarray, np.ndarray]:
    """Scale each window so its longer side is ``box`` pixels, keeping the aspect ratio, anti-aliased.

    -> (M, box, box) with each digit in its top-left corner, and the digits' sizes (M, 2). Pillow's
    resampling as matrices (box filter when shrinking, which averages every source pixel; bilinear when
    enlarging), so the whole batch is two matrix products.
    """
    tops, lefts, heights, widths = windows.T
    scale = box / np.maximum(np.maximum(heights, widths), 1)
    out_heights = np.maximum(1, np.round(heights * scale)).astype(np.int64)
    out_widths = np.maximum(1, np.round(widths * scale)).astype(np.int64)
    shrinking = scale < 1
    rows = resampling_matrices(tops, heights, out_heights, ink.shape[1], shrinking, box)
    columns = resampling_matrices(lefts, widths, out_widths, ink.shape[2], shrinking, box)
    fitted = np.matmul(np.matmul(rows, ink), columns.transpose(0, 2, 1))
    return np.clip(fitted, 0, 1), np.stack([out_heights, out_widths], axis=1)


def resampling_matrices(starts, lengths, out_lengths, total: int, box_filter: np.ndarray, box: int) -> np.ndarray:
    """(M, box, total) weights of Pillow's separable resampling along one axis (ImagingResample's coefficients).

    Output pixel i of a window [start, start + length) scaled to ``out_length`` pixels averages the source
    pixels under a box (shrinking) or triangle (enlarging) filter stretched to the scale; rows past
    ``out_length`` are zero. Digits share few distinct windows, so each distinct one is computed once.
    """
    keys, which = np.unique(np.stack([starts, lengths, out_lengths, box_filter], axis=1), axis=0, return_inverse=True)
    starts, lengths, out_lengths, box_filter = (keys[:, i, None, None] for i in range(4))
    box_filter = box_filter.astype(bool)
    scale = lengths / out_lengths  # source pixels per output pixel
    filter_scale = np.maximum(scale, 1.0)
    support = np.where(box_filter, 0.5, 1.0) * filter_scale
    outputs = np.arange(box)[None, :, None]
    centre = (outputs + 0.5) * scale
    source = np.arange(total)[None, None, :] - starts  # window coordinates
    x = (source + 0.5 - centre) / filter_scale
    weights = np.where(box_filter, (x > -0.5) & (x <= 0.5), np.clip(1 - np.abs(x), 0, None))
    inside = (
        (source >= np.maximum(np.trunc(centre - support + 0.5), 0))
        & (source < np.minimum(np.trunc(centre + support + 0.5), lengths))
        & (outputs < out_lengths)
    )
    weights = weights * inside
    total_weight = weights.sum(2, keepdims=True)
    return (weights / np.where(total_weight > 0, total_weight, 1)).astype(np.float32)[which.ravel()]


def paste_centred(digits: np.ndarray, size: int = IMAGE_SIZE, sizes: np.ndarray | None = None) -> np.ndarray:
    """Paste each digit (M, h, w) into a size x size canvas with its centre of mass at the centre, as MNIST.

    ``sizes`` (M, 2): the digits' own extents inside the given arrays (default: the whole array); the box
    never leaves the canvas.
    """
    count, height, width = digits.shape
    if sizes is None:
        sizes = np.tile([height, width], (count, 1))
    total = digits.sum((1, 2))
    safe = np.where(total > 0, total, 1)
    cy = (digits.sum(2) * np.arange(height)).sum(1) / safe
    cx = (digits.sum(1) * np.arange(width)).sum(1) / safe
    # MNIST puts the centre of mass at pixel (14, 14).
    tops = np.clip(np.round(size / 2 - cy), 0, np.maximum(size - sizes[:, 0], 0)).astype(np.int64)
    lefts = np.clip(np.round(size / 2 - cx), 0, np.maximum(size - sizes[:, 1], 0)).astype(np.int64)
    canvas = np.zeros((count, size + height, size + width), np.float32)  # room for the empty rest of each array
    # Digits share a few dozen places at most: one slice assignment per place, not a scatter of every pixel.
    places, which = np.unique(tops * canvas.shape[2] + lefts, return_inverse=True)
    order = np.argsort(which.ravel(), kind="stable")
    bounds = np.searchsorted(which.ravel()[order], np.arange(len(places) + 1)).tolist()
    for place, start, end in zip(places.tolist(), bounds[:-1], bounds[1:]):
        top, left = divmod(place, canvas.shape[2])
        chosen = order[start:end]
        canvas[chosen, top : top + height, left : left + width] = digits[chosen]
    return canvas[:, :size, :size]


def normalise_digits(crops: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Cropped digits, (ink contrast (h, w), mask of the digit's own ink (h, w)) each -> (M, 28, 28) float32.

    The images the model sees: saturated, thickened where needed, fitted into 20x20, centred on the mass.
    """
    if not crops:
        return np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    contrast, masks, sizes = stack_crops(crops)
    ink = saturate(contrast, masks)
    ink, windows = thicken(ink, sizes, thickening_radius(stroke_width(masks), sizes))
    fitted, fitted_sizes = fit_box(ink, windows)
    return paste_centred(fitted, sizes=fitted_sizes)
