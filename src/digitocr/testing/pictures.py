"""Synthetic test pictures for honest evaluation of reading: digits composed onto paper, canvases and numbers.

Glyphs are MNIST digits the caller passes in (use the validation split of the training file, never the
test set) or digits rendered with the named font packages below. Pictures come back encoded (PNG or JPEG
bytes), so decoding is part of what is measured. numpy + Pillow only.
"""

from __future__ import annotations

import glob
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from digitocr.config import NUM_CLASSES

# The only fonts font digits are drawn with: Debian packages, each with the files it installs (dpkg -L); no
# other font on the machine is looked at. The first package installed serves all font pictures, and one not
# installed is skipped: fonts-dejavu-core comes with fontconfig, so a package installed later (Debian's
# chromium pulls fonts-liberation) leaves the pictures as they were.
FONT_PACKAGES = (
    ("fonts-dejavu-core, fonts-dejavu-extra", "/usr/share/fonts/truetype/dejavu/*.ttf"),
    ("fonts-liberation", "/usr/share/fonts/truetype/liberation/*.ttf"),
    ("fonts-liberation2", "/usr/share/fonts/truetype/liberation2/*.ttf"),
    ("fonts-kaushanscript", "/usr/share/fonts/opentype/kaushanscript/KaushanScript-Regular.otf"),
    ("fonts-klee", "/usr/share/fonts/truetype/klee/*.ttf"),
    ("fonts-kristi", "/usr/share/fonts/truetype/kristi/Kristi.ttf"),
    ("fonts-leckerli-one", "/usr/share/fonts/truetype/leckerli-one/LeckerliOne-Regular.ttf"),
    ("fonts-yusei-magic", "/usr/share/fonts/truetype/yusei-magic/YuseiMagic-Regular.ttf"),
    ("fonts-havana", "/usr/share/fonts/opentype/havana/Havana-Regular.otf"),
)


@dataclass
class Sample:
    data: bytes  # the encoded picture
    text: str  # the digits it shows, left to right
    kind: str  # which generator made it


def font_files() -> list[str]:
    """The font files of the first package in ``FONT_PACKAGES`` that is installed, sorted by path."""
    for _, pattern in FONT_PACKAGES:
        found = sorted(glob.glob(pattern))
        if found:
            return found
    packages = ", ".join(package for package, _ in FONT_PACKAGES)
    raise FileNotFoundError(f"no font for font digits: install one of the Debian packages {packages}")


def font_glyph(digit: int, rng: np.random.Generator, fonts: list[str], size: int = 64) -> np.ndarray:
    """A digit rendered with a random font (regular to extra-light): float32 ink (H, W) in [0, 1]."""
    font = ImageFont.truetype(fonts[rng.integers(len(fonts))], size)
    canvas = Image.new("L", (size * 2, size * 2), 0)
    ImageDraw.Draw(canvas).text((size // 2, size // 4), str(digit), fill=255, font=font)
    return _trim(np.asarray(canvas, dtype=np.float32) / 255)


def _trim(ink: np.ndarray) -> np.ndarray:
    rows, columns = np.flatnonzero(ink.max(1) > 0.1), np.flatnonzero(ink.max(0) > 0.1)
    if rows.size == 0:
        return ink
    return ink[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]


def _resize(ink: np.ndarray, height: int) -> np.ndarray:
    width = max(1, round(ink.shape[1] * height / ink.shape[0]))
    return np.asarray(Image.fromarray(ink.astype(np.float32)).resize((width, height), Image.BILINEAR)).clip(0, 1)


def compose_number(
    glyphs: list[np.ndarray], rng: np.random.Generator, height: int = 56, touching: bool = False
) -> np.ndarray:
    """Glyphs (ink in [0, 1]) side by side at one height, with varied spacing and a little vertical jitter.

    ``touching``: neighbours overlap by a pixel or two, so their strokes meet.
    """
    scaled = [_resize(_trim(glyph), round(height * rng.uniform(0.85, 1.0))) for glyph in glyphs]
    gaps = (
        rng.integers(-3, 0, len(scaled))
        if touching
        else np.round(rng.uniform(0.08, 0.5, len(scaled)) * height).astype(int)
    )
    width = sum(glyph.shape[1] for glyph in scaled) + int(gaps[1:].clip(0).sum()) + 2
    canvas = np.zeros((round(height * 1.2), width), np.float32)
    x = 0
    for index, glyph in enumerate(scaled):
        if index:
            x = max(0, x + int(gaps[index]))
        y = int(rng.integers(0, canvas.shape[0] - glyph.shape[0] + 1))
        region = canvas[y : y + glyph.shape[0], x : x + glyph.shape[1]]
        np.maximum(region, glyph[:, : region.shape[1]], out=region)
        x += glyph.shape[1]
    return canvas[:, : max(x, 1)]


def paper_photo(ink: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A phone photo of the ink on paper: uneven lighting, tilt, noise, blur; sometimes chalk on a dark board."""
    fill = rng.uniform(0.2, 0.7)  # share of the picture's height the writing takes
    ink = _tilt(ink, rng)
    aspect = ink.shape[1] / ink.shape[0]
    size = int(rng.integers(80, 400))
    if aspect > 1.5:  # a number: wide enough that each digit keeps at least ~30 pixels of height
        size = int(min(max(size, 30 * aspect / fill), 1600))
    ink = _place(ink, size, size if aspect <= 1.5 else None, fill, rng)
    height, width = ink.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * xs / width + np.sin(angle) * ys / height
    vignette = (xs / width - 0.5) ** 2 + (ys / height - 0.5) ** 2
    light = 1 + rng.uniform(0.1, 0.35) * (ramp - ramp.mean()) - rng.uniform(0, 0.5) * vignette
    if rng.random() < 0.2:  # light chalk on a dark board
        paper, ink_colour = rng.uniform(0.1, 0.3), rng.uniform(0.7, 0.95)
    else:
        paper, ink_colour = rng.uniform(0.65, 0.95), rng.uniform(0.03, 0.35)
    alpha = ink * rng.uniform(0.8, 1.0)
    grey = (paper * (1 - alpha) + ink_colour * alpha) * light
    grey = grey + rng.normal(0, rng.uniform(0.005, 0.04), grey.shape)
    tint = rng.uniform(0.9, 1.05, 3)  # a warm or cool cast, as a real photo has
    picture = Image.fromarray((np.clip(grey[..., None] * tint, 0, 1) * 255).astype(np.uint8), "RGB")
    return picture.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.2)))


def canvas_drawing(ink: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A drawing-pad canvas: a hard-edged light stroke on black (or dark on white, or on transparency)."""
    stroke = np.clip((ink - 0.3) * 3, 0, 1)  # a brush has a solid core and a thin anti-aliased edge
    size = int(rng.integers(200, 420))
    stroke = _place(stroke, size, size, rng.uniform(0.35, 0.85), rng)
    style = rng.random()
    if style < 0.2:  # transparent background, black stroke, as a canvas exported to PNG
        rgba = np.zeros((*stroke.shape, 4), np.uint8)
        rgba[..., 3] = (stroke * 255).astype(np.uint8)
        return Image.fromarray(rgba, "RGBA")
    grey = stroke if style < 0.7 else 1 - stroke
    return Image.fromarray((grey * 255).astype(np.uint8), "L")


def _tilt(ink: np.ndarray, rng: np.random.Generator, degrees: float = 8) -> np.ndarray:
    rotated = Image.fromarray(np.pad(ink, 4).astype(np.float32)).rotate(
        rng.uniform(-degrees, degrees), Image.BILINEAR, expand=True
    )
    return _trim(np.asarray(rotated).clip(0, 1))


def _place(ink: np.ndarray, width: int, height: int | None, fill: float, rng: np.random.Generator) -> np.ndarray:
    """Scale the ink to ``fill`` of the canvas height (or width, if it is wide) and put it anywhere on it."""
    if height is None:  # a wide number: the canvas follows its shape
        ink = _resize(ink, max(8, round(width / ink.shape[1] * ink.shape[0] * fill)))
        height = round(ink.shape[0] / fill)
    else:
        ink = _resize(ink, max(8, round(height * fill)))
        if ink.shape[1] > width * 0.95:
            ink = _resize(ink, max(8, round(ink.shape[0] * width * 0.95 / ink.shape[1])))
    canvas = np.zeros((height, max(width, ink.shape[1] + 2)), np.float32)
    y = int(rng.integers(0, max(1, canvas.shape[0] - ink.shape[0] + 1)))
    x = int(rng.integers(0, max(1, canvas.shape[1] - ink.shape[1] + 1)))
    canvas[y : y + ink.shape[0], x : x + ink.shape[1]] = ink[: canvas.shape[0] - y]
    return canvas


def encode(picture: Image.Image, rng: np.random.Generator) -> bytes:
    """PNG for canvases, mostly JPEG (quality 40-90) for photos: what users upload."""
    buffer = io.BytesIO()
    if picture.mode == "RGBA" or rng.random() < 0.3:
        picture.save(buffer, "PNG")
    else:
        picture.convert("RGB").save(buffer, "JPEG", quality=int(rng.integers(40, 91)))
    return buffer.getvalue()


def make_samples(
    kind: str, count: int, mnist_images: np.ndarray, mnist_labels: np.ndarray, seed: int = 0
) -> list[Sample]:
    """``count`` pictures of one kind: photo | canvas | font | number | touching.

    mnist_images: uint8 or float (N, 28, 28) with ink high; numbers take 2-8 random glyphs from them.
    """
    rng = np.random.default_rng(seed)
    fonts = font_files() if kind == "font" else []
    images = np.asarray(mnist_images, dtype=np.float32)
    images = images / 255 if images.max() > 1 else images
    samples = []
    for _ in range(count):
        if kind in ("photo", "canvas"):
            index = int(rng.integers(len(images)))
            glyph, text = images[index], str(int(mnist_labels[index]))
            picture = (paper_photo if kind == "photo" else canvas_drawing)(glyph, rng)
        elif kind == "font":
            digit = int(rng.integers(NUM_CLASSES))
            glyph, text = font_glyph(digit, rng, fonts), str(digit)
            picture = paper_photo(glyph, rng)
        elif kind in ("number", "touching"):
            indices = rng.integers(len(images), size=int(rng.integers(2, 9)))
            glyph = compose_number([images[i] for i in indices], rng, touching=kind == "touching")
            text = "".join(str(int(mnist_labels[i])) for i in indices)
            picture = paper_photo(glyph, rng)
        else:
            raise ValueError(f"unknown kind {kind!r} (photo, canvas, font, number, touching)")
        samples.append(Sample(encode(picture, rng), text, kind))
    return samples
