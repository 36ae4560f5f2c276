"""Synthetic test pictures for honest evaluation of reading: digits composed onto paper, canvases, numbers, forms.

Glyphs are MNIST digits the caller passes in (never digits a model trained on: the benchmark passes the validation
split of the training file for the first five kinds and the test split for the line reader's kinds, comb onwards)
or digits rendered with the named font packages below. Pictures come back encoded (PNG or JPEG bytes), so
decoding is part of what is measured. numpy + Pillow only.
"""

from __future__ import annotations

import glob
import io
from collections.abc import Callable
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

LINE_HEIGHT = 56  # pixels: numbers are composed at this digit height, then a photo scales them
CHALK_SHARE = 0.2  # of paper photos: light chalk on a dark board, the other polarity users send
MIN_DIGIT_PIXELS = 30  # a number's digits keep at least this height in a photo: the size people photograph at
MAX_PHOTO_SIZE = 1600  # pixels on the long side: a phone photo as an upload form scales it
# Digits per picture (inclusive): forms have 3-8 boxes; colour photos and small numbers are short numbers.
NUMBER_DIGITS, COMB_DIGITS, COLOUR_DIGITS, SMALL_DIGITS, LINE_DIGITS = (2, 8), (3, 8), (2, 6), (3, 6), (2, 6)
LINES = (2, 3)  # lines of numbers in a picture of several lines
SMALL_PHOTO = (1200, 900)  # width, height of the photo a small number is lost in
SMALL_HEIGHT = (30, 45)  # compose_number's height there: its glyphs take 85-100 % of it, so digits are 25-45 px
RULED_HEIGHT = (30, 60)  # digit height on a ruled page, in pixels: the page is photographed at that scale
RULE_SPACING = (1.2, 1.6)  # ruled lines every 1.2-1.6 digit heights, as notebooks' 7-9 mm rules under 6 mm digits
ON_LINE = 0.05  # of the digit height: how far above a ruled line a digit's foot may stop
CROSS_SHARE = 0.25  # digits of a comb written off-centre, over a box line, as hurried writers do
PAGE_MARGIN = 0.1  # paper around a colour photo's page, per side: more than the warp moves a corner inwards
WARP = 0.08  # how far inside the page each corner of a colour photo looks (share of its side): a page in
# perspective that fills the photo (no desk: finding the page is not what these pictures measure)
TIGHT_SCAN = (8, 16)  # long side of a tight crop's small scan, in pixels (UCI's 8x8 to a 16-pixel form cell)
TIGHT_SHOWN = (40, 120)  # long side it is enlarged to, in pixels
EMPTY_PICTURES = ("blank", "noise", "gradient", "texture", "comb", "ruled", "specks")


@dataclass
class Sample:
    data: bytes  # the encoded picture
    text: str  # the digits it shows, left to right; lines joined by "\n", top to bottom; "" for none
    kind: str  # which generator made it
    variant: str = ""  # which of its variants, for a generator of several (empty pictures: EMPTY_PICTURES)


@dataclass
class Glyphs:
    images: np.ndarray  # float32 (N, 28, 28) ink in [0, 1]
    labels: np.ndarray  # (N,) the digit each shows


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


def _scaled(glyphs: list[np.ndarray], rng: np.random.Generator, height: int) -> list[np.ndarray]:
    """Each glyph trimmed to its ink and scaled to 85-100 % of ``height``, as one writer's digits vary."""
    return [_resize(_trim(glyph), round(height * rng.uniform(0.85, 1.0))) for glyph in glyphs]


def _stamp(canvas: np.ndarray, ink: np.ndarray, y: int, x: int) -> None:
    """Ink laid onto the canvas at (y, x), where strokes cross the darker wins; cut off at the canvas's edge."""
    region = canvas[y : y + ink.shape[0], x : x + ink.shape[1]]
    np.maximum(region, ink[: region.shape[0], : region.shape[1]], out=region)


def compose_number(
    glyphs: list[np.ndarray],
    rng: np.random.Generator,
    height: int = LINE_HEIGHT,
    touching: bool = False,
    on_line: bool = False,
) -> np.ndarray:
    """Glyphs (ink in [0, 1]) side by side at one height, with varied spacing and a little vertical jitter.

    ``touching``: neighbours overlap by a pixel or two, so their strokes meet. ``on_line``: every glyph's foot
    within ON_LINE of the bottom, as digits written on a ruled line; else anywhere in 20 % of slack.
    """
    scaled = _scaled(glyphs, rng, height)
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
        low = canvas.shape[0] - glyph.shape[0] - round(ON_LINE * height) if on_line else 0
        _stamp(canvas, glyph, int(rng.integers(max(0, low), canvas.shape[0] - glyph.shape[0] + 1)), x)
        x += glyph.shape[1]
    return canvas[:, : max(x, 1)]


def comb_form(
    glyphs: list[np.ndarray], rng: np.random.Generator, height: int = LINE_HEIGHT, boxes: int | None = None
) -> np.ndarray:
    """A form's comb of boxes with one glyph in each (ink, trimmed): a top and a bottom line, ticks between boxes.

    Box lines are thin and nearly as dark as the digits; a share of the digits sit off-centre and touch or cross
    them. ``boxes``: how many, for an empty comb (no glyphs).
    """
    count = len(glyphs) if boxes is None else boxes
    box_width, box_height = round(height * rng.uniform(0.9, 1.4)), round(height * rng.uniform(1.15, 1.5))
    thickness, darkness = int(rng.integers(2, 4)), rng.uniform(0.6, 1.0)  # MNIST's strokes: ~5 px at 56
    tick = round(box_height * rng.uniform(0.3, 1.0))  # some combs have full dividers, some short ticks
    pad = height  # room for digits written over the comb's outer lines: none is cut off
    canvas = np.zeros((box_height + 2 * pad, count * box_width + thickness + 2 * pad), np.float32)
    top, bottom, right = pad, pad + box_height, pad + count * box_width + thickness
    canvas[top : top + thickness, pad:right] = darkness
    canvas[bottom : bottom + thickness, pad:right] = darkness
    for index in range(count + 1):
        x = pad + index * box_width
        canvas[bottom - tick : bottom, x : x + thickness] = darkness
    for index, glyph in enumerate(_scaled(glyphs, rng, height)):
        spread = 0.35 if rng.random() < CROSS_SHARE else 0.08  # how far off the box's centre, as a share of it
        x = pad + index * box_width + (box_width - glyph.shape[1]) // 2 + round(rng.uniform(-1, 1) * spread * box_width)
        y = top + (box_height - glyph.shape[0]) // 2 + round(rng.uniform(-1, 1) * spread * box_height)
        _stamp(canvas, glyph, max(0, y), max(0, x))
    return _trim(canvas)


def stack_lines(numbers: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Composed numbers (ink) one under another, top to bottom, each indented a little, gaps of 10-60 % of a line."""
    height = max(number.shape[0] for number in numbers)
    gaps = np.round(rng.uniform(0.1, 0.6, len(numbers)) * height).astype(int)
    indents = rng.integers(0, height, len(numbers))
    width = max(int(indent) + number.shape[1] for indent, number in zip(indents, numbers))
    canvas = np.zeros((sum(number.shape[0] for number in numbers) + int(gaps[1:].sum()), width), np.float32)
    y = 0
    for number, gap, indent in zip(numbers, gaps, indents):
        y += int(gap) if y else 0
        _stamp(canvas, number, y, int(indent))
        y += number.shape[0]
    return canvas


def _layout(ink: np.ndarray, rng: np.random.Generator, digit_height: int | None = None) -> np.ndarray:
    """The ink tilted and placed on a photo's canvas at a random size, share of its height and position.

    ``digit_height``: a digit's height in the ink's pixels, when the ink is more than one line of digits (box
    lines, several lines): the photo is then large enough that each digit keeps MIN_DIGIT_PIXELS, tilt and all.
    None: a number, whose tilted ink keeps MIN_DIGIT_PIXELS (its digits a little less when tilted).
    """
    fill = rng.uniform(0.2, 0.7)  # share of the picture's height the writing takes
    ink = _tilt(ink, rng)
    aspect = ink.shape[1] / ink.shape[0]
    share = 1.0 if digit_height is None else digit_height / ink.shape[0]  # one digit's share of the ink's height
    size = int(rng.integers(80, 400))
    if aspect > 1.5:  # wide: the ink fills ``fill`` of a picture as wide as ``size``
        size = int(min(max(size, MIN_DIGIT_PIXELS * aspect / fill / share), MAX_PHOTO_SIZE))
    elif digit_height is not None:  # a block of writing: the ink fills ``fill`` of a square, or 95 % of its width
        size = int(min(max(size, MIN_DIGIT_PIXELS / min(fill, 0.95 / aspect) / share), MAX_PHOTO_SIZE))
    return _place(ink, size, size if aspect <= 1.5 else None, fill, rng)


def paper_photo(
    ink: np.ndarray, rng: np.random.Generator, chalk: float = CHALK_SHARE, digit_height: int | None = None
) -> Image.Image:
    """A phone photo of the ink on paper: uneven lighting, tilt, noise, blur; sometimes chalk on a dark board.

    ``chalk``: the chance of a dark board (0 for a form, which is paper); ``digit_height``: see ``_layout``.
    """
    return _photograph(_layout(ink, rng, digit_height), rng, chalk)


def _photograph(ink: np.ndarray, rng: np.random.Generator, chalk: float = CHALK_SHARE) -> Image.Image:
    """Ink as it lies on the picture, photographed on grey paper (or a dark board): lighting, noise, a cast."""
    light = _lighting(*ink.shape, rng)
    paper, ink_colour = _paper_and_ink(rng, chalk)
    return _develop(_ink_on(paper, ink_colour, ink, rng) * light, rng)


def _lighting(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W) brightness factors: a gradient in a random direction and a vignette, as a lamp and a lens give."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * xs / width + np.sin(angle) * ys / height
    vignette = (xs / width - 0.5) ** 2 + (ys / height - 0.5) ** 2
    return 1 + rng.uniform(0.1, 0.35) * (ramp - ramp.mean()) - rng.uniform(0, 0.5) * vignette


def _paper_and_ink(rng: np.random.Generator, chalk: float) -> tuple[float, float]:
    """Grey levels of the paper and the ink: dark ink on light paper, or (chance ``chalk``) chalk on a board."""
    if rng.random() < chalk:
        return rng.uniform(0.1, 0.3), rng.uniform(0.7, 0.95)
    return rng.uniform(0.65, 0.95), rng.uniform(0.03, 0.35)


def _ink_on(paper, ink_colour, ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink of ``ink_colour`` laid on ``paper``, a little translucent: grey levels, or RGB triples (H, W, 3)."""
    alpha = ink * rng.uniform(0.8, 1.0)
    if np.ndim(ink_colour):
        alpha = alpha[..., None]
    return paper * (1 - alpha) + ink_colour * alpha


def _develop(values: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """The camera's share: sensor noise, a warm or cool cast (for a grey scene), blur; an RGB picture."""
    noise = rng.normal(0, rng.uniform(0.005, 0.04), values.shape[:2])
    values = values + (noise if values.ndim == 2 else noise[..., None])
    if values.ndim == 2:
        values = values[..., None] * rng.uniform(0.9, 1.05, 3)  # a warm or cool cast, as a real photo has
    picture = Image.fromarray((np.clip(values, 0, 1) * 255).astype(np.uint8), "RGB")
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


def _ink_colour(rng: np.random.Generator) -> np.ndarray:
    """RGB of a pen: blue ballpoint or black/graphite, half each."""
    if rng.random() < 0.5:
        return np.array([rng.uniform(0.05, 0.2), rng.uniform(0.1, 0.3), rng.uniform(0.45, 0.75)])
    return np.full(3, rng.uniform(0.03, 0.25))


def ruled_page(glyphs: list[np.ndarray], rng: np.random.Generator) -> Image.Image:
    """A number written on a ruled notebook page (RGB): light blue or grey lines across the whole picture every
    1.2-1.6 digit heights, the digits sitting on one of them, half the pages with a red margin line at the left.
    No glyphs: the page with no writing."""
    height = int(rng.integers(RULED_HEIGHT[0], RULED_HEIGHT[1] + 1))
    spacing = height * rng.uniform(*RULE_SPACING)
    blank = np.zeros((1, int(rng.integers(2, 10)) * height), np.float32)  # a page as wide as a few digits
    ink = compose_number(glyphs, rng, height=height, on_line=True) if glyphs else blank
    left = int(rng.integers(height // 2, 3 * height))
    width = left + ink.shape[1] + int(rng.integers(height // 2, 3 * height))
    rules = np.arange(rng.uniform(0.3, 1.0) * spacing, int(rng.integers(3, 9)) * spacing, spacing).round()
    page_height = int(rules[-1] + spacing / 2)
    paper = np.ones((page_height, width, 1)) * rng.uniform(0.85, 0.97) * rng.uniform(0.95, 1.0, 3)
    rule = np.full(3, rng.uniform(0.55, 0.7)) if rng.random() < 0.5 else np.array([0.55, 0.72, 0.92])  # grey, blue
    thickness = int(rng.integers(1, 3))
    for y in rules.astype(int):
        paper[y : y + thickness] = paper[y : y + thickness] * 0.3 + rule * 0.7
    if rng.random() < 0.5:  # the margin line, left of the writing
        x = int(left * rng.uniform(0.3, 0.8))
        paper[:, x : x + thickness] = np.array([0.9, 0.45, 0.5])
    canvas = np.zeros(paper.shape[:2], np.float32)
    if glyphs:
        baseline = int(rules[rules >= ink.shape[0]][rng.integers((rules >= ink.shape[0]).sum())])
        bottom = np.flatnonzero(ink.max(1) > 0.1)[-1] + 1  # the digits' lowest ink sits on the line
        _stamp(canvas, ink, max(0, baseline - bottom + int(rng.integers(-2, 3))), left)
    scene = _ink_on(paper, _ink_colour(rng), canvas, rng) * _lighting(*canvas.shape, rng)[..., None]
    return _develop(scene, rng)


def colour_photo(ink: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A colour phone photo of the ink on tinted paper (RGB): blue or black ink, a soft shadow across part of the
    page, the page seen in perspective (each corner of the photo up to WARP inside the page's)."""
    ink = _layout(ink, rng, digit_height=LINE_HEIGHT)
    ink = np.pad(ink, round(PAGE_MARGIN * max(ink.shape)))  # paper around the writing, so a corner cuts no digit
    paper = rng.uniform(0.8, 0.97) * rng.uniform(0.78, 1.0, 3)  # cream, pink, green or blue notepaper
    page = (
        _ink_on(paper, _ink_colour(rng), ink, rng) * (_lighting(*ink.shape, rng) * _shadow(*ink.shape, rng))[..., None]
    )
    height, width = ink.shape
    corners = np.array([(0, 0), (width, 0), (width, height), (0, height)], np.float64)
    inwards = np.array([(1, 1), (-1, 1), (-1, -1), (1, -1)])
    seen = corners + inwards * rng.uniform(0, WARP, (4, 2)) * (width, height)  # where each corner of the photo looks
    scene = Image.fromarray((np.clip(page, 0, 1) * 255).astype(np.uint8), "RGB").transform(
        (width, height), Image.PERSPECTIVE, _perspective(corners, seen), Image.BILINEAR
    )
    return _develop(np.asarray(scene, np.float32) / 255, rng)


def _shadow(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W) brightness factors: a soft-edged shadow (a hand, a phone) darkening one side of a random line."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    side = np.cos(angle) * (xs / width - 0.5) + np.sin(angle) * (ys / height - 0.5) - rng.uniform(-0.3, 0.3)
    edge = rng.uniform(0.03, 0.15)  # width of the penumbra, as a share of the page
    return 1 - rng.uniform(0.25, 0.5) / (1 + np.exp(-np.clip(side / edge, -50, 50)))


def _perspective(picture: np.ndarray, page: np.ndarray) -> tuple[float, ...]:
    """Pillow's PERSPECTIVE coefficients that map each of four points of the picture to its point on the page."""
    rows = []
    for (x, y), (u, v) in zip(picture, page):
        rows.append(((x, y, 1, 0, 0, 0, -u * x, -u * y), u))
        rows.append(((0, 0, 0, x, y, 1, -v * x, -v * y), v))
    matrix, target = np.array([row for row, _ in rows]), np.array([value for _, value in rows])
    return tuple(np.linalg.solve(matrix, target))


def small_photo(ink: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A photo of SMALL_PHOTO's size with the ink (a number at 25-45 px) somewhere on it, as paper_photo's."""
    return _photograph(_put(_tilt(ink, rng), *SMALL_PHOTO, rng), rng)


def tight_crop(glyph: np.ndarray, rng: np.random.Generator, light: bool) -> Image.Image:
    """A digit cropped to its ink with no margin, scanned small (TIGHT_SCAN) and enlarged (TIGHT_SHOWN), grey:
    dark ink on light paper, or light ink on dark (``light``), as a form cell or a canvas cropped tight."""
    ink = _trim(glyph)
    long_side = int(rng.integers(TIGHT_SCAN[0], TIGHT_SCAN[1] + 1))
    scan = _resize(ink, max(1, round(long_side * min(1.0, ink.shape[0] / ink.shape[1]))))
    paper, ink_colour = _paper_and_ink(rng, chalk=1.0 if light else 0.0)
    grey = paper + (ink_colour - paper) * scan + rng.normal(0, 0.02, scan.shape)
    small = Image.fromarray((np.clip(grey, 0, 1) * 255).round().astype(np.uint8), "L")
    scale = int(rng.integers(TIGHT_SHOWN[0], TIGHT_SHOWN[1] + 1)) / max(small.size)
    shown = tuple(max(1, round(side * scale)) for side in small.size)
    return small.resize(shown, Image.BICUBIC if rng.random() < 0.5 else Image.BILINEAR)  # as viewers enlarge


def empty_picture(rng: np.random.Generator) -> Image.Image:
    """A picture with no digits, one of EMPTY_PICTURES: blank paper, noise, a gradient, smooth blobs, an empty
    comb of boxes, ruled paper with no writing, a few specks on paper. Which one is in its ``info["variant"]``
    (``Sample.variant``), so a benchmark can say which kind of empty picture was read as digits."""
    variant = EMPTY_PICTURES[rng.integers(len(EMPTY_PICTURES))]
    picture = _empty_picture(variant, rng)
    picture.info["variant"] = variant
    return picture


def _empty_picture(variant: str, rng: np.random.Generator) -> Image.Image:
    height, width = (int(side) for side in rng.integers(64, 800, 2))
    channels = (height, width, 3) if rng.random() < 0.5 else (height, width)
    if variant == "blank":
        return _photograph(np.zeros((height, width), np.float32), rng)
    if variant == "noise":
        values = rng.normal(rng.uniform(0.3, 0.7), rng.uniform(0.05, 0.3), channels)
    elif variant == "gradient":
        ys, xs = np.mgrid[0:height, 0:width] / max(height, width)
        angle = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(angle) * xs + np.sin(angle) * ys
        ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-6)
        start, end = rng.uniform(0, 1, 2 * (len(channels) - 1)).reshape(2, -1)
        values = (start + (end - start) * ramp[..., None]).squeeze()
    elif variant == "texture":  # a few cells of random brightness, smoothly interpolated: blobs, no strokes
        cells = rng.uniform(0, 1, (*rng.integers(3, 10, 2), *channels[2:]))
        blobs = Image.fromarray((cells * 255).astype(np.uint8)).resize((width, height), Image.BICUBIC)
        values = rng.uniform(0.3, 0.7) + rng.uniform(0.1, 0.5) * (np.asarray(blobs) / 255 - 0.5)
    elif variant == "comb":
        return _form_photo(comb_form([], rng, boxes=int(rng.integers(COMB_DIGITS[0], COMB_DIGITS[1] + 1))), rng)
    elif variant == "ruled":
        return ruled_page([], rng)
    else:  # specks: one to six dots of dust or a pen's tip, 1 or 3 px across, on a photo of paper
        ink, count = np.zeros((height, width), np.float32), int(rng.integers(1, 7))
        for y, x, radius in zip(
            rng.integers(0, height, count), rng.integers(0, width, count), rng.integers(0, 2, count)
        ):
            ink[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1] = 1
        return _photograph(ink, rng)
    return Image.fromarray((np.clip(values, 0, 1) * 255).astype(np.uint8))


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
    return _put(ink, width, height, rng)


def _put(ink: np.ndarray, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """The ink as it is, anywhere on a canvas of ``width`` x ``height`` (widened if the ink is wider)."""
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


def _pick(glyphs: Glyphs, rng: np.random.Generator, digits: tuple[int, int]) -> tuple[list[np.ndarray], str]:
    """Random glyphs for a number of ``digits`` (fewest, most) digits, and the text they show."""
    indices = rng.integers(len(glyphs.images), size=int(rng.integers(digits[0], digits[1] + 1)))
    return [glyphs.images[i] for i in indices], "".join(str(int(glyphs.labels[i])) for i in indices)


def _one(glyphs: Glyphs, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    index = int(rng.integers(len(glyphs.images)))
    return glyphs.images[index], str(int(glyphs.labels[index]))


def _font(glyphs: Glyphs, rng: np.random.Generator) -> tuple[Image.Image, str]:
    digit = int(rng.integers(NUM_CLASSES))
    return paper_photo(font_glyph(digit, rng, font_files()), rng), str(digit)


def _number(touching: bool) -> Callable[[Glyphs, np.random.Generator], tuple[Image.Image, str]]:
    def number(glyphs: Glyphs, rng: np.random.Generator) -> tuple[Image.Image, str]:
        chosen, text = _pick(glyphs, rng, NUMBER_DIGITS)
        return paper_photo(compose_number(chosen, rng, touching=touching), rng), text

    return number


def _form_photo(comb: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A photo of a comb of boxes: paper (never a board), large enough for its digits, not for its box lines."""
    return paper_photo(comb, rng, chalk=0, digit_height=LINE_HEIGHT)


def _comb(glyphs: Glyphs, rng: np.random.Generator) -> tuple[Image.Image, str]:
    chosen, text = _pick(glyphs, rng, COMB_DIGITS)
    return _form_photo(comb_form(chosen, rng), rng), text


def _ruled(glyphs: Glyphs, rng: np.random.Generator) -> tuple[Image.Image, str]:
    chosen, text = _pick(glyphs, rng, NUMBER_DIGITS)
    return ruled_page(chosen, rng), text


def _colour(glyphs: Glyphs, rng: np.random.Generator) -> tuple[Image.Image, str]:
    chosen, text = _pick(glyphs, rng, COLOUR_DIGITS)
    return colour_photo(compose_number(chosen, rng), rng), text


def _small(glyphs: Glyphs, rng: np.random.Generator) -> tuple[Image.Image, str]:
    chosen, text = _pick(glyphs, rng, SMALL_DIGITS)
    height = int(rng.integers(SMALL_HEIGHT[0], SMALL_HEIGHT[1] + 1))
    return small_photo(compose_number(chosen, rng, height=height), rng), text


def _lines(glyphs: Glyphs, rng: np.random.Generator) -> tuple[Image.Image, str]:
    picked = [_pick(glyphs, rng, LINE_DIGITS) for _ in range(int(rng.integers(LINES[0], LINES[1] + 1)))]
    ink = stack_lines([compose_number(chosen, rng) for chosen, _ in picked], rng)
    return paper_photo(ink, rng, digit_height=LINE_HEIGHT), "\n".join(text for _, text in picked)


def _single(draw: Callable) -> Callable[[Glyphs, np.random.Generator], tuple[Image.Image, str]]:
    def single(glyphs: Glyphs, rng: np.random.Generator) -> tuple[Image.Image, str]:
        glyph, text = _one(glyphs, rng)
        return draw(glyph, rng), text

    return single


# kind -> (glyphs, rng) -> (picture, text). The first five are the reader's classic kinds; comb onwards the line
# reader's (issue 16). Generators draw from ``rng`` only, so a seed gives the same pictures.
GENERATORS: dict[str, Callable[[Glyphs, np.random.Generator], tuple[Image.Image, str]]] = {
    "photo": _single(paper_photo),
    "canvas": _single(canvas_drawing),
    "font": _font,
    "number": _number(touching=False),
    "touching": _number(touching=True),
    "comb": _comb,
    "ruled": _ruled,
    "colour": _colour,
    "small": _small,
    "lines": _lines,
    "tight-dark": _single(lambda glyph, rng: tight_crop(glyph, rng, light=False)),
    "tight-light": _single(lambda glyph, rng: tight_crop(glyph, rng, light=True)),
    "edge": lambda glyphs, rng: (empty_picture(rng), ""),
}


def make_samples(
    kind: str, count: int, mnist_images: np.ndarray, mnist_labels: np.ndarray, seed: int = 0
) -> list[Sample]:
    """``count`` pictures of one kind of ``GENERATORS``.

    mnist_images: uint8 or float (N, 28, 28) with ink high; numbers take random glyphs from them.
    """
    if kind not in GENERATORS:
        raise ValueError(f"unknown kind {kind!r} ({', '.join(GENERATORS)})")
    rng = np.random.default_rng(seed)
    images = np.asarray(mnist_images, dtype=np.float32)
    glyphs = Glyphs(images / 255 if images.max() > 1 else images, np.asarray(mnist_labels))
    samples = []
    for _ in range(count):
        picture, text = GENERATORS[kind](glyphs, rng)
        variant = picture.info.get("variant", "")
        samples.append(Sample(encode(picture, rng), text, kind, variant))
    return samples
