"""End to end, as a person uses it: `digitocr serve` in its own process, driven by headless Chromium and httpx.

Needs Chromium (`make test` installs Debian's, see tests/browser.py); trains the session's real model, and reads
touching digits drawn on the pad with the shipped line reader (`--model lines`).
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import io
import math

import httpx
import numpy as np
import pytest
from browser import chromium_path
from PIL import Image
from scipy import ndimage

from digitocr.catalog import LINE_READER
from digitocr.testing.server import running_server

pytestmark = pytest.mark.slow


# Strokes in pad fractions (0..1), MNIST-like: thick, centred, about 70 % of the pad's height. The placeholder
# reader resizes the whole pad to 28x28 without centring, so only shapes that fill the middle read reliably.
DIGITS = {
    "1": [[(0.52, 0.15), (0.5, 0.85)]],
    "0": [[(0.5 + 0.22 * math.sin(t * math.pi / 12), 0.5 - 0.33 * math.cos(t * math.pi / 12)) for t in range(25)]],
    "4": [[(0.55, 0.15), (0.28, 0.6), (0.75, 0.6)], [(0.6, 0.35), (0.6, 0.85)]],
}


def oval(cx: float, cy: float, rx: float, ry: float, slant: float, points: int = 12) -> list[tuple[float, float]]:
    """A 0 as people write it: from the top, anticlockwise, a little past the start, leaning right by ``slant``."""
    turn = [2.15 * math.pi * k / points for k in range(points + 1)]
    return [(cx - rx * math.sin(a) + slant * ry * math.cos(a), cy - ry * math.cos(a)) for a in turn]


def smooth(points: list[tuple[float, float]], steps: int = 5) -> list[tuple[float, float]]:
    """A Catmull-Rom curve through ``points``: a hand's stroke bends, it has no corners at its points."""
    ends = [points[0], *points, points[-1]]
    curve = []
    for p0, p1, p2, p3 in zip(ends, ends[1:], ends[2:], ends[3:]):
        for k in range(steps):
            t = k / steps
            curve.append(
                tuple(
                    0.5 * (2 * b + (c - a) * t + (2 * a - 5 * b + 4 * c - d) * t * t + (3 * b - a - 3 * c + d) * t**3)
                    for a, b, c, d in zip(p0, p1, p2, p3)
                )
            )
    return [*curve, points[-1]]


# Numbers whose digits touch, as a hand writes them on the pad: each digit a curved stroke about 55 % of the
# pad's height (the pad's pen is 1/13 of its width, so a stroke is about a seventh of the digit's height, as in
# MNIST), slanted a little, the second digit's stroke starting on (or running into) the first's.
TOUCHING = {
    # the 7's bar starts on the 3's upper bow
    "37": [
        smooth([(0.17, 0.30), (0.23, 0.23), (0.31, 0.20), (0.39, 0.23), (0.41, 0.31), (0.36, 0.40), (0.29, 0.45),
                (0.37, 0.48), (0.44, 0.56), (0.43, 0.67), (0.35, 0.75), (0.25, 0.77), (0.18, 0.73)]),
        smooth([(0.40, 0.24), (0.52, 0.23), (0.64, 0.22), (0.74, 0.22), (0.69, 0.34), (0.64, 0.47), (0.60, 0.60),
                (0.56, 0.79)]),
    ],
    # the 0's left side touches the 1
    "10": [
        smooth([(0.31, 0.27), (0.35, 0.22), (0.355, 0.36), (0.35, 0.50), (0.345, 0.65), (0.34, 0.79)]),
        smooth(oval(0.575, 0.50, 0.145, 0.29, 0.08)),
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def lines_server():
    """A real `digitocr serve --model lines`: the shipped line reader, which reads a line of digits whole."""
    with running_server(LINE_READER) as base:
        yield base


@pytest.fixture(scope="module")
def server(trained_model_path):
    """The base URL of a real `digitocr serve` on a free loopback port."""
    with running_server(trained_model_path) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    chromium = chromium_path()
    if chromium is None:  # never a skip: `make test` installs one or says what to install
        pytest.fail(
            "no Chromium for the browser tests: run `make test` (it installs Debian's chromium) or "
            "`apt-get install chromium`"
        )

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()


def draw(page, strokes) -> None:
    box = page.locator("#pad").bounding_box()
    for points in strokes:
        page.mouse.move(box["x"] + points[0][0] * box["width"], box["y"] + points[0][1] * box["height"])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=6)
        page.mouse.up()


def pad_pixels(page) -> np.ndarray:
    """The pad as it is drawn: (height, width) uint8, its red channel (the pad is grey: black ink on white)."""
    width, height, red = page.evaluate("""() => {
        const pad = document.querySelector('#pad');
        const pixels = pad.getContext('2d').getImageData(0, 0, pad.width, pad.height).data;
        return [pad.width, pad.height, Array.from(pixels.filter((value, i) => i % 4 === 0))];
    }""")
    return np.array(red, np.uint8).reshape(height, width)


def wait_for_prediction(page, expected: str) -> str:
    """The prediction once it shows ``expected`` (or whatever it shows after 20 s, for the failure message)."""
    with contextlib.suppress(Exception):  # a time-out: the assertion below shows what it showed instead
        page.wait_for_function(
            "(want) => document.querySelector('#prediction').textContent === want", arg=expected, timeout=20_000
        )
    return page.text_content("#prediction")


@pytest.fixture(scope="module")
def photo(tmp_path_factory, trained_model_path, mnist_root):
    """A 'photo': an MNIST test digit the model reads right, as dark ink on light paper, enlarged."""
    import torch

    from digitocr.data import read_mnist
    from digitocr.modelfile import load_model

    images, labels = read_mnist(mnist_root, train=False, log=lambda message: None)
    model = load_model(trained_model_path)
    with torch.no_grad():
        probabilities = model(images[:200, None].float() / 255).softmax(1)
    read_right = (probabilities.argmax(1) == labels[:200]) & (probabilities.max(1).values > 0.8)
    confident = int(read_right.nonzero()[0])
    pixels = 235 - images[confident].numpy().astype(np.float32) * 0.8  # grey-white paper, dark grey ink
    path = tmp_path_factory.mktemp("photo") / "digit.jpg"
    Image.fromarray(pixels.astype(np.uint8)).resize((336, 336), Image.BICUBIC).save(path, quality=92)
    return path, str(int(labels[confident]))


def test_draw_clear_and_upload_in_the_browser(server, browser, photo, tmp_path):
    page = browser.new_page(viewport={"width": 1100, "height": 1000})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server)
    page.wait_for_selector("#pad")

    for digit, strokes in DIGITS.items():
        page.click("#clear")
        draw(page, strokes)
        assert wait_for_prediction(page, digit) == digit, f"drew a {digit}"
        assert page.locator("#bars .bar.best .digit").first.text_content() == digit
    page.screenshot(path=tmp_path / "drawn.png", full_page=True)

    page.click("#clear")
    assert page.text_content("#prediction") == ""
    assert page.text_content("#confidence") == ""
    assert page.locator("#bars .bar.best").count() == 0
    assert (pad_pixels(page) == 255).all(), "the pad still has ink after #clear"

    path, label = photo
    page.set_input_files("#photo", str(path))
    page.wait_for_function("document.querySelector('#photo-result').textContent.startsWith('Read')", timeout=20_000)
    assert label in page.text_content("#photo-result strong")
    boxes = page.evaluate("""() => {
        const view = document.querySelector('#photo-view');
        const pixels = view.getContext('2d').getImageData(0, 0, view.width, view.height).data;
        let orange = 0;
        for (let i = 0; i < pixels.length; i += 4)
            if (pixels[i] > 200 && pixels[i + 1] > 60 && pixels[i + 1] < 120 && pixels[i + 2] < 40) orange++;
        return orange;
    }""")
    assert boxes > 100, "no box drawn around the digit found"
    page.screenshot(path=tmp_path / "page.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.screenshot(path=tmp_path / "phone.png", full_page=True)
    assert not errors, errors
    page.close()


@pytest.mark.parametrize("number", sorted(TOUCHING))
def test_the_pad_reads_a_number_whose_digits_touch(lines_server, browser, number, tmp_path):
    """What the line reader is for: two digits written into each other, read whole by the shipped line reader."""
    page = browser.new_page(viewport={"width": 1100, "height": 1000})
    page.goto(lines_server)
    page.wait_for_selector("#pad")
    draw(page, TOUCHING[number])
    shown = wait_for_prediction(page, number)
    page.locator("#pad").screenshot(path=tmp_path / f"pad-{number}.png")
    _, pieces = ndimage.label(pad_pixels(page) < 128)
    assert pieces == 1, f"the digits of {number} as drawn do not touch"
    assert shown == number, f"drew {number} with touching digits; the page read {shown!r}"
    assert page.locator("#bars .chart").count() == 2  # ten bars for each digit read
    page.close()


def made_up_reading(lines: dict[str, tuple[int, int, int, int]]) -> dict:
    """The server's answer for these lines (text -> box), each digit a confident share of its line's box."""
    made = []
    for text, (x, y, w, h) in lines.items():
        step = w // len(text)
        digits = [
            {
                "digit": int(d),
                "confidence": 0.9,
                "box": [x + k * step, y, step, h],
                "top3": [{"digit": int(d), "confidence": 0.9}],
            }
            for k, d in enumerate(text)
        ]
        made.append({"text": text, "box": [x, y, w, h], "digits": digits})
    return {"text": "\n".join(lines), "digits": [d for line in made for d in line["digits"]], "lines": made}


def test_a_reading_of_several_lines_shows_them_line_under_line(server, browser, photo):
    answer = made_up_reading({"37": (40, 30, 250, 110), "10": (50, 190, 220, 110)})
    page = browser.new_page(viewport={"width": 1100, "height": 1000})
    page.route("**/api/predict*", lambda route: route.fulfill(json=answer))
    page.goto(server)
    draw(page, TOUCHING["37"])
    assert wait_for_prediction(page, "37\n10") == "37\n10"
    assert page.inner_text("#prediction") == "37\n10"  # as rendered: the newline is a line break
    assert page.text_content("#confidence") == "confidence 3: 90 % · 7: 90 % / 1: 90 % · 0: 90 %"

    page.set_input_files("#photo", str(photo[0]))
    page.wait_for_function("document.querySelector('#photo-result').textContent.startsWith('Read')", timeout=20_000)
    assert page.inner_text("#photo-result strong") == "37\n10"
    blue = page.evaluate("""() => {
        const view = document.querySelector('#photo-view');
        const pixels = view.getContext('2d').getImageData(0, 0, view.width, view.height).data;
        let blue = 0;
        for (let i = 0; i < pixels.length; i += 4)
            if (pixels[i] < 90 && pixels[i + 1] > 70 && pixels[i + 1] < 120 && pixels[i + 2] > 180) blue++;
        return blue;
    }""")
    assert blue > 1000, "no box drawn around the lines"  # two boxes' outlines, about 1,400 pixels each
    page.close()


def test_keyboard_reads_and_clears(server, browser, trained_model_path):
    page = browser.new_page()
    page.goto(server)
    # The page names the model reading (the path given to --model here; "reader (shipped)" by default).
    page.wait_for_function("document.getElementById('model-card').textContent.length > 0")
    assert page.text_content("#model-card").startswith(f"Reading with {trained_model_path}: MLP, ")
    page.click("#predict")
    assert "Draw a digit first" in page.text_content("#pad-message")
    draw(page, DIGITS["1"])
    assert wait_for_prediction(page, "1") == "1"
    page.focus("#pad")
    page.keyboard.press("Escape")
    assert page.text_content("#prediction") == ""
    page.keyboard.press("Tab")  # from the pad to the buttons, in reading order
    assert page.evaluate("document.activeElement.id") == "clear"
    page.close()


def test_page_says_plainly_when_nothing_was_recognised(server, browser, photo):
    page = browser.new_page()
    # The server's answer for a picture without digits, whatever this model makes of the scribble below.
    page.route("**/api/predict*", lambda route: route.fulfill(json={"text": "", "digits": [], "lines": []}))
    page.goto(server)
    draw(page, [[(0.1, 0.1), (0.12, 0.12)]])
    page.wait_for_function("document.querySelector('#pad-message').textContent.length > 0")
    assert "Nothing recognised" in page.text_content("#pad-message")
    assert page.text_content("#prediction") == ""
    page.set_input_files("#photo", str(photo[0]))
    page.wait_for_function("document.querySelector('#photo-result').textContent.startsWith('No digits')")
    page.close()


def test_concurrent_requests_are_answered_correctly(server, photo):
    data = photo[0].read_bytes()
    expected = httpx.post(f"{server}/api/predict", files={"image": ("digit.jpg", data)}).json()

    def ask(_):
        with httpx.Client(base_url=server, timeout=60) as client:
            return [client.post("/api/predict", files={"image": ("digit.jpg", data)}).json() for _ in range(4)]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = [answer for batch in pool.map(ask, range(16)) for answer in batch]
    # Requests arriving together are read as one batch; a batched matrix product may round the last bits of
    # a probability differently, nothing more.
    assert [answer["text"] for answer in answers] == [expected["text"]] * 64
    for answer in answers:
        for digit, wanted in zip(answer["digits"], expected["digits"]):
            assert digit["box"] == wanted["box"] and digit["digit"] == wanted["digit"]
            assert digit["confidence"] == pytest.approx(wanted["confidence"], abs=1e-5)


def test_health_and_model_card_of_a_trained_model(server, trained_model_path):
    assert httpx.get(f"{server}/api/health").json()["status"] == "ok"
    card = httpx.get(f"{server}/api/model").json()
    assert card["test_accuracy"] > 0.95
    assert len(card["data_sha256"]) == 64
    assert httpx.get(f"{server}/docs").status_code == 200


def test_upload_of_a_picture_in_another_format(server, photo):
    picture = Image.open(photo[0])
    buffer = io.BytesIO()
    picture.save(buffer, "WEBP")
    answer = httpx.post(f"{server}/api/predict", files={"image": ("digit.webp", buffer.getvalue())}).json()
    assert answer["text"] == photo[1]


def test_photo_can_be_dropped_on_the_page(server, browser, photo):
    path, label = photo
    page = browser.new_page()
    page.goto(server)
    page.evaluate(
        """async (base64) => {
        const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
        const drop = new DataTransfer();
        drop.items.add(new File([bytes], 'dropped.jpg', { type: 'image/jpeg' }));
        document.querySelector('#drop').dispatchEvent(new DragEvent('drop', { dataTransfer: drop, bubbles: true }));
    }""",
        base64.b64encode(path.read_bytes()).decode(),
    )
    page.wait_for_function("document.querySelector('#photo-result').textContent.startsWith('Read')", timeout=20_000)
    assert label in page.text_content("#photo-result strong")
    page.close()
