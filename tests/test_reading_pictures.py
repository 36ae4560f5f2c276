"""Opening pictures and reading edge cases: formats, alpha, EXIF, bombs, blank and noise pictures."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitocr.config import ReadingConfig
from digitocr.errors import ImageError
from digitocr.reading import Recognizer
from digitocr.reading.candidates import fills_picture, find_ink, ink_of, prepare
from digitocr.reading.images import (
    frame,
    load_working,
    load_working_many,
    open_picture,
    to_grey,
    to_working,
    upright,
    working_size,
)


def seven(size: int = 120, ink: int = 20, paper: int = 235, mode: str = "L") -> Image.Image:
    """A hand-drawn-looking 7: dark strokes on light paper."""
    picture = Image.new(mode, (size, size), paper)
    draw = ImageDraw.Draw(picture)
    width = max(1, size // 12)
    draw.line([(size * 0.3, size * 0.25), (size * 0.7, size * 0.25), (size * 0.45, size * 0.8)], fill=ink, width=width)
    return picture


def encoded(picture: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF"])
def test_every_common_format_gives_one_digit_candidate(fmt):
    candidates = prepare(encoded(seven(), fmt))
    assert len(candidates) == 1
    assert candidates[0].image.shape == (28, 28)


def test_paths_bytes_pil_and_numpy_are_all_read_alike(tmp_path):
    picture = seven()
    path = tmp_path / "seven.png"
    picture.save(path)
    sources = [path, str(path), path.read_bytes(), picture, np.asarray(picture), np.asarray(picture) / 255.0]
    images = [prepare(source)[0].image for source in sources]
    for image in images[1:]:
        assert np.allclose(image, images[0], atol=0.02)


def test_a_batch_loads_each_picture_as_it_loads_alone():
    """Grey pictures already at their working size (arrays, PNG bytes, PIL images) are converted as one stack;
    those needing more (EXIF rotation, transparency, colour, scaling) take the picture's own path."""
    small = seven(28)
    exif = Image.Exif()
    exif[0x0112] = 6
    sources = [
        np.asarray(small),
        encoded(small, "PNG"),
        small,
        encoded(small, "PNG", exif=exif.tobytes()),
        encoded(small.convert("LA"), "PNG"),
        encoded(small.convert("RGB"), "PNG"),
        encoded(seven(), "PNG"),
        np.asarray(seven(28)).astype(np.float32) / 255,
    ]
    together = load_working_many(sources)
    for source, (grey, mapping) in zip(sources, together):
        alone, alone_mapping = load_working(source)
        assert np.array_equal(grey, alone) and mapping == alone_mapping
    assert not np.array_equal(together[3][0], together[1][0])  # the EXIF rotation was applied
    with pytest.raises(ImageError, match="not a picture"):
        load_working_many([encoded(small, "PNG"), b"not a picture"])


def test_transparent_png_counts_as_paper_for_either_stroke_colour():
    for stroke in (0, 255):
        rgba = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
        ImageDraw.Draw(rgba).line([(50, 10), (50, 90)], fill=(stroke, stroke, stroke, 255), width=8)
        grey = to_grey(rgba)
        paper = 1.0 if stroke == 0 else 0.0
        assert grey[5, 5] == pytest.approx(paper) and grey[50, 50] == pytest.approx(stroke / 255)
        assert len(prepare(encoded(rgba, "PNG"))) == 1
    empty = Image.new("RGBA", (50, 50), (0, 0, 0, 0))
    assert prepare(empty) == []


def test_exif_orientation_is_applied():
    tall = Image.new("L", (40, 80), 255)
    tall.paste(0, (0, 0, 40, 10))  # a dark band at the top
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    shown = upright(Image.open(io.BytesIO(encoded(tall, "JPEG", exif=exif.tobytes()))))
    assert shown.size == (80, 40)
    assert np.asarray(shown)[:, -5:].mean() < 60  # the band is now on the right


def test_working_size_shrinks_large_and_enlarges_tiny_pictures():
    config = ReadingConfig()
    assert max(working_size((4000, 3000), config)) == config.work_size
    assert min(working_size((10, 10), config)) + 2 * frame((10, 10), config) == config.min_work_size
    assert working_size((200, 100), config) == (200, 100)


def test_a_tiny_ten_pixel_picture_is_read():
    tiny = Image.new("L", (10, 10), 255)
    ImageDraw.Draw(tiny).line([(5, 1), (5, 8)], fill=0, width=2)
    assert len(prepare(tiny)) == 1
    assert to_working(tiny).shape == (28, 28)  # enlarged to MNIST's size


def test_a_huge_picture_is_read_downscaled():
    picture = seven(size=3000)
    candidates = prepare(encoded(picture, "PNG"))
    assert len(candidates) == 1
    x, y, w, _ = candidates[0].box  # in the input's pixels, not the working image's
    assert 800 < x < 1000 and 600 < y < 800 and 1000 < w < 1400


def test_pictures_over_the_pixel_limit_and_bombs_are_refused():
    with pytest.raises(ImageError, match="limit"):
        open_picture(encoded(seven(size=200), "PNG"), ReadingConfig(max_pixels=10_000))
    bomb = encoded(Image.new("1", (8000, 6000)), "PNG")  # 48 Mpixel that compress to a few kilobytes
    assert len(bomb) < 100_000
    with pytest.raises(ImageError, match="48,000,000 pixels"):
        open_picture(bomb)
    with pytest.raises(ImageError, match="bytes"):
        open_picture(b"x" * 200, ReadingConfig(max_bytes=100))
    # Past Pillow's own guards (89,478,485 and 178,956,970 pixels) too, the one limit named is ours.
    for size in ((10_000, 10_000), (14_000, 14_000)):
        with pytest.raises(ImageError) as refused:
            open_picture(encoded(Image.new("1", size), "PNG"))
        assert "40,000,000 pixels" in str(refused.value)
        assert "89,478,485" not in str(refused.value) and "178956970" not in str(refused.value)


@pytest.mark.parametrize(
    "source, message",
    [
        (b"", "empty"),
        (b"GIF89a not really", "Pillow"),
        (encoded(Image.new("L", (64, 64)), "PNG")[:60], "damaged"),
        ("/nonexistent/picture.png", "cannot read"),
        (np.zeros((4, 4, 2)), "shape"),
        (42, "int"),
    ],
)
def test_unreadable_pictures_raise_image_error(source, message):
    with pytest.raises(ImageError, match=message):
        open_picture(source)


def test_blank_black_dot_and_noise_pictures_read_as_nothing(untrained_model_path):
    recognizer = Recognizer(untrained_model_path)
    rng = np.random.default_rng(0)
    dot = np.full((200, 200), 240, np.uint8)
    dot[98:104, 98:104] = 10
    pictures = {
        "blank white": np.full((100, 100), 255, np.uint8),
        "all black": np.zeros((100, 100), np.uint8),
        "grey page with lighting": np.linspace(120, 220, 300).astype(np.uint8)[None].repeat(200, 0),
        "single dot": dot,
        "gaussian noise": np.clip(rng.normal(128, 30, (150, 150)), 0, 255).astype(np.uint8),
        "salt and pepper": (rng.random((150, 150)) < 0.5).astype(np.uint8) * 255,
        "filled disc": np.asarray(_disc()),
    }
    for name, picture in pictures.items():
        result = recognizer.read(picture)
        assert result.text == "" and result.digits == [], name


def _disc() -> Image.Image:
    picture = Image.new("L", (120, 120), 230)
    ImageDraw.Draw(picture).ellipse((30, 30, 90, 90), fill=20)
    return picture


def test_result_shape_matches_the_json_contract(untrained_model_path):
    recognizer = Recognizer(untrained_model_path, config=ReadingConfig(min_confidence=0.0))
    result = recognizer.read(seven())
    assert len(result.digits) == 1 and result.text == str(result.digits[0].digit)
    reading = result.digits[0]
    assert reading.image.shape == (28, 28) and len(reading.top3) == 3
    assert reading.top3[0] == (reading.digit, reading.confidence)
    digit = {
        "digit": reading.digit,
        "confidence": reading.confidence,
        "box": list(reading.box),
        "top3": [{"digit": d, "confidence": p} for d, p in reading.top3],
    }
    assert result.to_dict() == {
        "text": result.text,
        "digits": [digit],
        "lines": [{"text": result.text, "box": list(reading.box), "digits": [digit]}],
    }
    assert [r.text for r in recognizer.read_many([seven(), np.full((50, 50), 255, np.uint8)])] == [result.text, ""]


def test_reading_pictures_needs_no_torch_scipy_or_opencv():
    """The runtime install (onnxruntime, numpy, pillow) must be able to prepare pictures."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np; from digitocr.reading.candidates import prepare; "
        "prepare(np.full((40, 40), 255, np.uint8)); "
        "print(sorted({'torch', 'scipy', 'cv2'} & set(sys.modules)))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_read_each_gives_a_bad_picture_its_error_in_place_and_reads_the_others(untrained_model_path, tmp_path):
    reader = Recognizer(untrained_model_path, config=ReadingConfig(min_confidence=0.0))
    good = encoded(seven(), "PNG")
    answers = reader.read_each([good, b"garbage", tmp_path / "missing.png", good])
    assert isinstance(answers[1], ImageError) and isinstance(answers[2], ImageError)
    alone = reader.read(good)
    for answer in (answers[0], answers[3]):
        assert answer.text == alone.text != "" and [d.box for d in answer.digits] == [d.box for d in alone.digits]
        assert answer.digits[0].confidence == pytest.approx(alone.digits[0].confidence, abs=1e-5)


def test_a_missing_file_or_a_folder_is_an_image_error_naming_it(tmp_path):
    for path in (tmp_path / "missing.png", tmp_path):
        with pytest.raises(ImageError, match="cannot read the picture"):
            open_picture(path)


def fat_zero(light_ink: bool, scan: int = 12, shown: int = 96) -> Image.Image:
    """A 0 cropped to its ink (no margin) from a small scan, enlarged as viewers do: blurry, fat, half the picture."""
    ink, paper = (230, 30) if light_ink else (30, 230)
    small = Image.new("L", (scan * 3, scan * 4), paper)
    ImageDraw.Draw(small).ellipse([0, 0, scan * 3 - 1, scan * 4 - 1], outline=ink, width=scan // 2)
    small = small.resize((scan * 3 // 4 * 2, scan * 2), Image.BOX)
    return small.resize((shown * 3 // 4, shown), Image.BICUBIC)


@pytest.mark.parametrize("light_ink", [False, True])
def test_a_digit_filling_a_tight_crop_is_read_as_its_strokes_in_either_polarity(light_ink):
    """With no margin of paper the stages took half the crop for paper and the other half for ink, or nothing;
    read again on a frame of its own paper, the ring is the ink and its hole paper, whichever its colour."""
    picture = fat_zero(light_ink)
    candidates = prepare(encoded(picture, "PNG"))
    assert len(candidates) == 1
    _, _, width, height = candidates[0].box
    assert width >= 0.9 * picture.width and height >= 0.9 * picture.height  # the whole ring, all four sides
    image = candidates[0].image
    assert image[12:16, 12:16].max() < 0.2  # the hole is paper
    assert image[4:24, 4:24].max() > 0.9  # the ring is ink


def test_pure_noise_is_no_ink_while_a_faint_digit_on_the_same_noise_keeps_its_strokes():
    """The threshold's own noise term came to about nothing on a picture of mostly paper, and specks of pure noise
    passed it; the noise floor keeps them out (the mask without it, which tight crops are told by, still has them),
    and a faint digit on the same noise keeps its strokes."""
    rng = np.random.default_rng(4)
    noise = np.clip(rng.normal(0.5, 0.1, (200, 300)), 0, 1).astype(np.float32)
    config = ReadingConfig()
    _, ink, loose = find_ink(noise[None], config)
    assert loose.mean() > 0.05  # what the threshold alone passed: 9 % of the picture
    assert ink.mean() < 0.001  # a few specks at most (26 pixels)
    digit = noise.copy()
    digit[60:140, 140:148] -= 0.4  # the stroke of a 1, pencil-grey on this noise
    _, ink, _ = find_ink(digit[None], config)
    assert ink[0, 70:130, 141:147].mean() > 0.9 and ink[0, :, :120].mean() < 0.001


@pytest.mark.parametrize("seed", [16, 234])
def test_smooth_shading_that_runs_off_every_side_is_no_tight_crop_and_holds_no_ink(seed):
    """A texture of soft blobs fills its picture as a tight crop's digit does, but its greys are no two levels of
    paper and ink, not even with its lighting taken out: its ink mask is empty and both shipped models read
    nothing (these two read as a 3 and a 1 by ``lines``, an 8 by ``reader``, before ``candidates.two_levels``)."""
    from digitocr.testing.pictures import empty_picture

    texture = empty_picture(np.random.default_rng(seed))
    assert texture.info["variant"] == "texture"
    grey, _ = load_working(encoded(texture, "PNG"))
    config = ReadingConfig()
    assert fills_picture(find_ink(grey[None], config)[2], config)[0]  # taken for a tight crop by its ink alone
    assert not ink_of(grey, config)[1].any()
    assert [Recognizer(name).read(encoded(texture, "PNG")).text for name in ("lines", "reader")] == ["", ""]


def test_only_filled_crops_are_read_again_on_a_frame(mnist_root):
    """Of the benchmark's pictures, most tight crops are read again on a frame of paper; nearly all colour photos,
    whose page in perspective leaves the table running off three sides (a few percent of the picture), keep their
    first reading: read on a frame, they lost 3 points (benchmarks/reading_accuracy.py, 2026-12-02)."""
    from digitocr.data import load_mnist
    from digitocr.testing.pictures import make_samples

    test = load_mnist(mnist_root, log=lambda message: None).test
    glyphs = test.images[:, 0].numpy(), test.labels.numpy()
    config = ReadingConfig()

    def flagged(kind: str) -> float:
        samples = make_samples(kind, 60, *glyphs, seed=11)
        first = [find_ink(load_working(sample.data)[0][None], config)[2] for sample in samples]  # its loose mask
        return np.mean([fills_picture(mask, config)[0] for mask in first])

    # Measured with this seed: 2 of 60 colour photos and single-digit photos each, no ruled page, line or number;
    # three quarters of the tight crops (the others' first reading holds: ink under half, polarity right).
    assert flagged("ruled") == flagged("lines") == flagged("number") == 0
    assert flagged("colour") <= 0.05 and flagged("photo") <= 0.05
    assert flagged("tight-dark") >= 0.6 and flagged("tight-light") >= 0.6
