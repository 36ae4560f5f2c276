"""Opening pictures safely and bringing them to one working form: upright, grey, paper where transparent.

Pillow and numpy only (no torch), so the ONNX runtime install reads pictures too. Sizes are checked from
the header before any pixel is decoded, which is what stops decompression bombs.
"""

from __future__ import annotations

import io
import os
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from digitocr.config import DIGIT_BOX, IMAGE_SIZE, ReadingConfig
from digitocr.errors import ImageError
from digitocr.reading import stages

TINY_FRAME = (IMAGE_SIZE - DIGIT_BOX) // 2  # pixels of paper around a tiny picture once enlarged: MNIST's frame
# Grey pictures of more than 8 bits a pixel, and the full-scale values of the integer depths they come in.
DEEP_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
INTEGER_FULL_SCALES = (255.0, 65535.0, float(2**32 - 1))


def open_picture(source, config: ReadingConfig = ReadingConfig()) -> Image.Image:
    """A path, bytes, a PIL image or a numpy array -> a PIL image, refusing what is too large or unreadable."""
    if isinstance(source, Image.Image):
        _check_size(source.size, config)
        return source
    if isinstance(source, np.ndarray):
        return _from_array(source, config)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:  # a missing file, a folder, no permission: one clear error, never a traceback
            size = path.stat().st_size
            if size > config.max_bytes:
                raise ImageError(f"the picture is {size:,} bytes; the limit is {config.max_bytes:,}")
            data = path.read_bytes()
        except OSError as error:
            raise ImageError(f"cannot read the picture {path}: {error.strerror or error}") from None
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
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            # Pillow's own, higher guard fired before our header check: name our limit, the one that applies.
            raise ImageError(
                f"the picture has more than {config.max_pixels:,} pixels, the limit (a decompression "
                "bomb, or a photo to scale down first)"
            ) from None
        except UnidentifiedImageError:
            raise ImageError("not a picture Pillow can read (PNG, JPEG, BMP, GIF, WebP, TIFF, ...)") from None
        except (OSError, ValueError, SyntaxError, EOFError) as error:
            raise ImageError(f"the picture is damaged or truncated: {error}") from None


def _check_size(size: tuple[int, int], config: ReadingConfig) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(f"the picture has no pixels ({width}x{height})")
    if width * height > config.max_pixels:
        raise ImageError(
            f"the picture is {width}x{height} = {width * height:,} pixels; the limit is "
            f"{config.max_pixels:,} (a decompression bomb, or a photo to scale down first)"
        )


def _from_array(array: np.ndarray, config: ReadingConfig) -> Image.Image:
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ImageError(f"expected an (H, W), (H, W, 3) or (H, W, 4) array, got shape {array.shape}")
    _check_size((array.shape[1], array.shape[0]), config)
    array = _as_uint8(array)
    return Image.fromarray(array.squeeze(2) if array.ndim == 3 and array.shape[2] == 1 else array)


def _as_uint8(array: np.ndarray) -> np.ndarray:
    """Float arrays are taken as [0, 1] (as the model sees them); integers are scaled by their real range."""
    if array.dtype == np.uint8:
        return array
    full_scale = 1.0 if np.issubdtype(array.dtype, np.floating) else _full_scale(array)
    return _scaled_uint8(array, full_scale)


def _full_scale(values: np.ndarray, candidates: tuple[float, ...] = INTEGER_FULL_SCALES) -> float:
    """The value that means full brightness: a 16-bit array's 65,535, else the smallest candidate that holds the
    brightest pixel (16-bit scans often arrive as 32-bit pictures; 0..255 values in a wide type stay as they are)."""
    if values.dtype.kind == "u" and values.dtype.itemsize == 2:  # either byte order (Pillow's I;16B is >u2)
        return 65535.0
    brightest = float(np.nanmax(values)) if values.size else 0.0
    return next((scale for scale in candidates if brightest <= scale), candidates[-1])


def _scaled_uint8(values: np.ndarray, full_scale: float) -> np.ndarray:
    return np.clip(np.nan_to_num(values.astype(np.float32) * np.float32(255.0 / full_scale)), 0, 255).astype(np.uint8)


def _eight_bit(picture: Image.Image) -> Image.Image:
    """A grey picture of more than 8 bits (16-bit PNG, 32-bit integer or float TIFF) -> 8-bit grey, scaled by the
    range its values come from: clipping at 255 would turn a 16-bit page white and its strokes into noise."""
    values = np.asarray(picture)
    full_scale = _full_scale(values, (1.0, *INTEGER_FULL_SCALES) if picture.mode == "F" else INTEGER_FULL_SCALES)
    return Image.fromarray(_scaled_uint8(values, full_scale))


def load_working(source, config: ReadingConfig = ReadingConfig()) -> tuple[np.ndarray, tuple[float, float, int]]:
    """A picture -> (its grey working image, float32 (H, W) in [0, 1]; how working pixels map to the input's).

    The mapping is (x scale, y scale, frame): input x = (working x - frame) * x scale, in the picture's pixels
    as shown (after its EXIF rotation). A grey array already at its working size (an MNIST-sized stack, say)
    skips Pillow altogether.
    """
    if isinstance(source, np.ndarray) and source.ndim == 2 and source.size and _at_working_size(source.shape, config):
        return np.multiply(_as_uint8(source), np.float32(1 / 255), dtype=np.float32), (1.0, 1.0, 0)
    picture = open_picture(source, config)
    grey = to_working(picture, config)
    (width, height) = shown_size(picture)  # = the upright picture's size
    margin = frame((width, height), config)
    return grey, (width / (grey.shape[1] - 2 * margin), height / (grey.shape[0] - 2 * margin), margin)


def _at_working_size(shape: tuple[int, int], config: ReadingConfig) -> bool:
    """Whether a grey (H, W) array is already its own working image (no scaling, no frame); refuses one over
    the size limit."""
    size = (shape[1], shape[0])
    _check_size(size, config)
    return working_size(size, config) == size and not frame(size, config)


def load_working_many(
    sources, config: ReadingConfig = ReadingConfig(), errors_in_place: bool = False
) -> list[tuple[np.ndarray, tuple] | ImageError]:
    """``load_working`` for each source, in order, raising for the first that cannot be read (or, with
    ``errors_in_place``, giving its ImageError in its place). Each picture is brought to its working size as it
    is opened, so a batch of photos never holds them at full size; grey 8-bit pictures already at their working
    size, an MNIST-sized batch of arrays or PNG files, are converted to floats together as one array."""
    loaded: list = []
    ready: dict[tuple[int, int], bool] = {}  # array shape -> already at its working size, no frame
    same_shape: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, source in enumerate(sources):
        try:
            loaded.append(_load_one(source, config, ready))
        except ImageError as error:
            if not errors_in_place:
                raise
            loaded.append(error)
            continue
        if isinstance(loaded[-1], np.ndarray):
            same_shape[loaded[-1].shape].append(index)
    for indices in same_shape.values():
        greys = np.multiply(np.stack([loaded[i] for i in indices]), np.float32(1 / 255), dtype=np.float32)
        for index, grey in zip(indices, greys):
            loaded[index] = (grey, (1.0, 1.0, 0))
    return loaded


def _load_one(source, config: ReadingConfig, ready: dict) -> tuple[np.ndarray, tuple] | np.ndarray:
    """A source's working image and mapping, or its uint8 pixels as they are when they already are its working
    image (``ready`` remembers that per shape), to be converted with the others of its shape."""
    if not isinstance(source, (np.ndarray, Image.Image)):
        source = open_picture(source, config)  # a file or bytes: decoded here, checked like the others below
    if _plain_grey(source):
        shape = source.shape if isinstance(source, np.ndarray) else (source.size[1], source.size[0])
        if shape not in ready:
            ready[shape] = _at_working_size(shape, config)
        if ready[shape]:
            return np.asarray(source)
    return load_working(source, config)


def _plain_grey(source: np.ndarray | Image.Image) -> bool:
    """Whether an array or picture's 8-bit values are its grey working pixels as they are, if the size is right:
    nothing to rotate, flatten onto paper or convert."""
    if isinstance(source, np.ndarray):
        return source.ndim == 2 and source.dtype == np.uint8 and source.size > 0
    return source.mode == "L" and not _has_alpha(source) and _orientation(source) == 1


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
    """The (width, height) a picture is scaled to: longest side at most work_size; a tiny picture (shortest side
    under min_work_size) enlarged so that with its ``frame`` of paper its shortest side is min_work_size."""
    width, height = size
    scale = min(1.0, config.work_size / max(width, height))
    if min(width, height) < config.min_work_size:
        scale = min((config.min_work_size - 2 * TINY_FRAME) / min(width, height), config.work_size / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def frame(size: tuple[int, int], config: ReadingConfig) -> int:
    """Pixels of paper added around a picture once scaled: MNIST's 4-pixel frame for a tiny one, else none.

    A tiny picture is usually a digit filling its frame (8x8 or 16x16 scans, tight crops), where ink is
    not the minority the stages expect; on its own frame of paper it is an MNIST image again.
    """
    return TINY_FRAME if min(size) < config.min_work_size else 0


def to_working(picture: Image.Image, config: ReadingConfig = ReadingConfig()) -> np.ndarray:
    """Upright, resized to the working size, grey and framed: float32 (H, W) in [0, 1]."""
    picture = upright(picture)
    size = working_size(picture.size, config)
    margin = frame(picture.size, config)
    if picture.format == "JPEG" and size[0] < picture.size[0] // 2:
        picture.draft(picture.mode, (size[0], size[1]))  # JPEG decodes straight at 1/2..1/8 scale: much faster
    if picture.mode in DEEP_GREY_MODES:
        picture = _eight_bit(picture)
    elif picture.mode not in ("L", "LA", "RGB", "RGBA"):
        picture = picture.convert("RGBA" if _has_alpha(picture) else "RGB")
    if picture.size != size:
        picture = picture.resize(size, Image.BILINEAR, reducing_gap=2.0)  # anti-aliased when shrinking
    grey = to_grey(picture)
    return stages.on_paper(grey, margin) if margin else grey


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
