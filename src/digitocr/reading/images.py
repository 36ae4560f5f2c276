"""Opening pictures safely and bringing them to one working form: upright, grey, paper where transparent.

Pillow and numpy only (no torch), so the ONNX runtime install reads pictures too. Sizes are checked from
the header before any pixel is decoded, which is what stops decompression bombs.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from digitocr.config import ReadingConfig
from digitocr.errors import ImageError


def open_picture(source, config: ReadingConfig = ReadingConfig()) -> Image.Image:
    """A path, bytes, a PIL image or a numpy array -> a PIL image, refusing what is too large or unreadable."""
    if isinstance(source, Image.Image):
        _check_size(source.size, config)
        return source
    if isinstance(source, np.ndarray):
        return _from_array(source, config)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            size = path.stat().st_size
        except OSError as error:
            raise ImageError(f"cannot read the picture {path}: {error.strerror or error}") from None
        if size > config.max_bytes:
            raise ImageError(f"the picture is {size:,} bytes; the limit is {config.max_bytes:,}")
        data = path.read_bytes()
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > config.max_bytes:
            raise ImageError(f"the picture is {len(data):,} bytes; the limit is {config.max_bytes:,}")
    else:
        raise ImageError(f"cannot read a picture from a {type(source).__name__}")
    return _decode(data, config)


def _decode(data: bytes, config: ReadingConfig) -> Image.Image:
    if not data:
        raise ImageError("the picture is empty (0 bytes)")
    with warnings.catch_warnings():
        # Pillow only warns between its bomb limit and twice it; our own limit below is the real guard.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            picture = Image.open(io.BytesIO(data))
            _check_size(picture.size, config)  # from the header: nothing decoded yet
            picture.load()  # GIF, TIFF, WebP: the first frame
            return picture
        except ImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ImageError(f"refused a possible decompression bomb: {error}") from None
        except UnidentifiedImageError:
            raise ImageError("not a picture Pillow can read (PNG, JPEG, BMP, GIF, WebP, TIFF, ...)") from None
        except (OSError, ValueError, SyntaxError, EOFError) as error:
            raise ImageError(f"the picture is damaged or truncated: {error}") from None


def _check_size(size: tuple[int, int], config: ReadingConfig) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(f"the picture has no pixels ({width}x{height})")
    if width * height > config.max_pixels:
        raise ImageError(f"the picture is {width}x{height} = {width * height:,} pixels; the limit is "
                         f"{config.max_pixels:,} (a decompression bomb, or a photo to scale down first)")


def _from_array(array: np.ndarray, config: ReadingConfig) -> Image.Image:
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ImageError(f"expected an (H, W), (H, W, 3) or (H, W, 4) array, got shape {array.shape}")
    _check_size((array.shape[1], array.shape[0]), config)
    array = _as_uint8(array)
    return Image.fromarray(array.squeeze(2) if array.ndim == 3 and array.shape[2] == 1 else array)


def _as_uint8(array: np.ndarray) -> np.ndarray:
    """Floats are taken as [0, 1] (as the model sees them); other integers as 0..255."""
    if array.dtype == np.uint8:
        return array
    scale = 255.0 if np.issubdtype(array.dtype, np.floating) else 1.0
    return np.clip(np.nan_to_num(array.astype(np.float32) * scale), 0, 255).astype(np.uint8)


def load_working(source, config: ReadingConfig = ReadingConfig()) -> tuple[np.ndarray, tuple[int, int]]:
    """A picture -> (its grey working image, float32 (H, W) in [0, 1]; its size as shown, (width, height)).

    A grey array already at its working size (an MNIST-sized stack, say) skips Pillow altogether.
    """
    if isinstance(source, np.ndarray) and source.ndim == 2 and source.size:
        size = (source.shape[1], source.shape[0])
        _check_size(size, config)
        if working_size(size, config) == size:
            return np.multiply(_as_uint8(source), np.float32(1 / 255), dtype=np.float32), size
    picture = open_picture(source, config)
    return to_working(picture, config), shown_size(picture)


def shown_size(picture: Image.Image) -> tuple[int, int]:
    """The picture's size as shown, i.e. after its EXIF rotation (boxes are given in these pixels)."""
    width, height = picture.size
    return (height, width) if _orientation(picture) in (5, 6, 7, 8) else (width, height)


def _orientation(picture: Image.Image) -> int:
    if not {"exif", "Raw profile type exif"} & picture.info.keys() and not hasattr(picture, "tag_v2"):
        return 1  # no EXIF block (PNG from a canvas, most scans): nothing to parse
    try:
        return picture.getexif().get(0x0112, 1)
    except (OSError, ValueError, SyntaxError, KeyError):
        return 1


def upright(picture: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag, so a phone photo is read the way it is shown."""
    if _orientation(picture) == 1:
        return picture
    try:
        return ImageOps.exif_transpose(picture)
    except (OSError, ValueError, SyntaxError, KeyError):  # a broken EXIF block is no reason to fail
        return picture


def working_size(size: tuple[int, int], config: ReadingConfig) -> tuple[int, int]:
    """The (width, height) the stages run at: longest side at most work_size, shortest at least min_work_size."""
    width, height = size
    scale = min(1.0, config.work_size / max(width, height))
    scale = max(scale, min(config.min_work_size / min(width, height), config.work_size / max(width, height)))
    return max(1, round(width * scale)), max(1, round(height * scale))


def to_working(picture: Image.Image, config: ReadingConfig = ReadingConfig()) -> np.ndarray:
    """Upright, resized to the working size and grey: float32 (H, W) in [0, 1]."""
    picture = upright(picture)
    size = working_size(picture.size, config)
    if picture.format == "JPEG" and size[0] < picture.size[0] // 2:
        picture.draft(picture.mode, (size[0], size[1]))  # JPEG decodes straight at 1/2..1/8 scale: much faster
    if picture.mode not in ("L", "LA", "RGB", "RGBA"):
        picture = picture.convert("RGBA" if _has_alpha(picture) else "RGB")
    if picture.size != size:
        picture = picture.resize(size, Image.BILINEAR, reducing_gap=2.0)  # anti-aliased when shrinking
    return to_grey(picture)


def _has_alpha(picture: Image.Image) -> bool:
    return picture.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in picture.info


def _unit(channel: Image.Image) -> np.ndarray:
    """An 8-bit channel -> float32 in [0, 1]."""
    return np.multiply(np.asarray(channel), np.float32(1 / 255), dtype=np.float32)


def to_grey(picture: Image.Image) -> np.ndarray:
    """Greyscale float32 (H, W) in [0, 1]; transparent pixels become paper.

    Paper is white behind dark strokes and black behind light ones: the opaque pixels decide, because a
    transparent canvas may hold either.
    """
    if not _has_alpha(picture):
        return _unit(picture if picture.mode == "L" else picture.convert("L"))
    rgba = picture.convert("LA")
    grey, alpha = _unit(rgba.getchannel("L")), _unit(rgba.getchannel("A"))
    opaque = alpha > 0.5
    if not opaque.any():
        return np.ones_like(grey)  # nothing drawn: blank paper
    paper = 1.0 if grey[opaque].mean() < 0.5 else 0.0
    return grey * alpha + paper * (1 - alpha)
