"""Training-time augmentation of whole batches of tensors: random affine maps and elastic distortion.

Both become one sampling grid per image, so a batch is resampled once by ``grid_sample`` (no per-image PIL
work, no double blur). Random numbers come from a CPU ``torch.Generator``, so a seed fixes the result on any device.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from digitocr.config import DIGIT_BOX, AugmentConfig

Augment = Callable[[Tensor], Tensor]


def _uniform(count: int, bound: float, generator: torch.Generator) -> Tensor:
    return (torch.rand(count, generator=generator) * 2 - 1) * bound


def affine_matrices(count: int, config: AugmentConfig, generator: torch.Generator) -> Tensor:
    """(count, 2, 3) maps from output to input coordinates in ``affine_grid``'s [-1, 1] units."""
    angle = torch.deg2rad(_uniform(count, config.rotate, generator))
    shear = torch.tan(torch.deg2rad(_uniform(count, config.shear, generator)))
    zoom = 1 + _uniform(count, config.scale, generator)
    # affine_grid's coordinates span 2 units over the image, so a shift of `translate` image widths is 2x that.
    shift = _uniform(2 * count, 2 * config.translate, generator).view(count, 2)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    # rotation @ shear, divided by the zoom: sampling the input at 1/zoom enlarges the digit by zoom.
    theta = torch.stack(
        [
            torch.stack([cos, cos * shear - sin, shift[:, 0]], dim=1),
            torch.stack([sin, sin * shear + cos, shift[:, 1]], dim=1),
        ],
        dim=1,
    )
    return theta


def elastic_displacement(count: int, size: int, config: AugmentConfig, generator: torch.Generator) -> Tensor:
    """(count, size, size, 2) smooth random displacements in pixels, about ``elastic_alpha`` std per axis.

    Random displacements on a coarse ``elastic_grid`` x ``elastic_grid`` lattice, bicubically upsampled: as smooth
    as Simard et al.'s Gaussian-filtered noise field, at a fraction of the cost of a large blur kernel.
    """
    coarse = torch.randn(count, 2, config.elastic_grid, config.elastic_grid, generator=generator)
    field = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)
    return field.permute(0, 2, 3, 1) * config.elastic_alpha


def lower_resolution(images: Tensor, config: AugmentConfig, generator: torch.Generator) -> Tensor:
    """See a random ``config.low_resolution`` share of (N, 1, H, W) images at a lower resolution.

    Each chosen image is shrunk by area averaging so its 20-pixel digit box spans ``low_resolution_min`` to
    ``low_resolution_max`` pixels, enlarged back bilinearly, then its strokes are saturated again (divided by
    the median of its inked pixels), which is what the reader's stages do to a small scan (``stages.saturate``).
    The model learns blurred, blocky strokes: 8x8 scans of other writers are read far better (README).
    """
    count, _, height, width = images.shape
    chosen = torch.rand(count, generator=generator) < config.low_resolution
    sizes = torch.randint(config.low_resolution_min, config.low_resolution_max + 1, (count,), generator=generator)
    if not chosen.any():
        return images
    images = images.clone()
    for size in sizes[chosen].unique().tolist():
        which = torch.nonzero(chosen & (sizes == size)).flatten()
        side = max(2, round(height * size / DIGIT_BOX))  # the digit box of a 28-pixel image shrunk to `size`
        small = F.interpolate(images[which], size=(side, round(width * side / height)), mode="area")
        blurred = F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False).flatten(1)
        inked = torch.where(blurred > 0.3 * blurred.amax(1, keepdim=True), blurred, torch.nan)
        level = inked.nanmedian(1, keepdim=True).values.nan_to_num(1.0).clamp_min(1e-3)
        images[which] = (blurred / level).clamp(0, 1).view(-1, 1, height, width)
    return images


def augment_batch(images: Tensor, config: AugmentConfig, generator: torch.Generator) -> Tensor:
    """Distort each image of (N, 1, H, W) independently as ``config`` says; labels are unchanged by design."""
    if config.affine or config.elastic:
        images = _warp(images, config, generator)
    return lower_resolution(images, config, generator) if config.low_resolution > 0 else images


def _warp(images: Tensor, config: AugmentConfig, generator: torch.Generator) -> Tensor:
    """The affine and elastic distortions as one sampling grid, resampled once."""
    count, _, height, width = images.shape
    theta = affine_matrices(count, config, generator) if config.affine else torch.eye(2, 3).expand(count, 2, 3)
    grid = F.affine_grid(theta, [count, 1, height, width], align_corners=False)
    if config.elastic:
        # pixels -> grid units (2 units span the image); (x, y) order as grid_sample expects
        grid = grid + elastic_displacement(count, height, config, generator) * (2 / height)
    grid = grid.to(images.device, images.dtype)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def make_augment(config: AugmentConfig, seed: int) -> Augment:
    """A function batch -> distorted batch with its own seeded generator; the identity when augmentation is off."""
    if not config.enabled:
        return lambda images: images
    generator = torch.Generator().manual_seed(seed + 2)
    return lambda images: augment_batch(images, config, generator)


def shift_images(images: Tensor, dx: int, dy: int) -> Tensor:
    """Move (N, C, H, W) images by whole pixels (right by dx, down by dy), filling with background zeros."""
    padded = F.pad(images, (abs(dx), abs(dx), abs(dy), abs(dy)))
    height, width = images.shape[-2:]
    top, left = abs(dy) - dy, abs(dx) - dx
    return padded[..., top : top + height, left : left + width]
