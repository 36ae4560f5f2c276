"""End to end, as a person uses it: `digitocr serve` in its own process, driven by headless Chromium and httpx.

Needs Chromium (`make test` installs Debian's, see tests/browser.py) and trains the session's real model.
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

from digitocr.testing.server import running_server

pytestmark = pytest.mark.slow


# Strokes in pad fractions (0..1), MNIST-like: thick, centred, about 70 % of the pad's height. The placeholder
# reader resizes the whole pad to 28x28 without centring, so only shapes that fill the middle read reliably.
DIGITS = {
    "1": [[(0.52, 0.15), (0.5, 0.85)]],
    "0": [[(0.5 + 0.22 * math.sin(t * math.pi / 12), 0.5 - 0.33 * math.cos(t * math.pi / 12)) for t in range(25)]],
    "4": [[(0.55, 0.15), (0.28, 0.6), (0.75, 0.6)], [(0.6, 0.35), (0.6, 0.85)]],
}


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
    ink = page.evaluate("""() => {
        const pad = document.querySelector('#pad');
        const pixels = pad.getContext('2d').getImageData(0, 0, pad.width, pad.height).data;
        return pixels.some((value, i) => i % 4 !== 3 && value !== 255);
    }""")
    assert not ink, "the pad still has ink after #clear"

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
    page.route("**/api/predict*", lambda route: route.fulfill(json={"text": "", "digits": []}))
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
