"""The REST API through FastAPI's TestClient: answers, every error path, and a fuzz that never sees a 500;
and through a real `digitocr serve` on raw sockets, for bodies a TestClient cannot send (declared, never sent).

A model with untrained weights is enough here: these tests check the HTTP layer, not how well digits are read.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import re
import socket

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from jsonschema import Draft202012Validator
from PIL import Image, ImageDraw

from digitocr.config import TrainConfig
from digitocr.errors import ImageError
from digitocr.modelfile import save_model
from digitocr.models import build_model
from digitocr.reading import Recognizer
from digitocr.serve import ServeSettings, create_app
from digitocr.serve.app import STATIC
from digitocr.testing.server import running_server

MB = 1024 * 1024


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    # Untrained, except that the last layer's bias makes every answer a confident 1: the reader drops
    # unsure digits, and these tests need an answer to check the HTTP layer around it.
    path = tmp_path_factory.mktemp("serve") / "untrained.pth"
    model = build_model(TrainConfig().model)
    with torch.no_grad():
        model.layers[-1].bias.copy_(torch.tensor([0.0, 50.0] + [0.0] * 8))
    return save_model(path, model, TrainConfig())


@pytest.fixture(scope="module")
def client(model_path):
    with TestClient(create_app(ServeSettings(model_path=str(model_path)))) as client:
        yield client


def png_bytes(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def canvas_png() -> bytes:
    """What the page sends: its 400x400 pad (white paper, a dark stroke) scaled down to 112x112."""
    picture = Image.new("RGB", (400, 400), "white")
    ImageDraw.Draw(picture).line([(200, 70), (200, 330)], fill="black", width=31)
    return png_bytes(picture.resize((112, 112), Image.LANCZOS))


def post_file(client, data: bytes, name="digit.png", content_type="image/png", **params):
    return client.post("/api/predict", files={"image": (name, data, content_type)}, params=params)


def assert_error(response, status: int, why: str) -> None:
    """The API's one error shape: ``status`` and JSON {"detail": "..."} whose sentence contains ``why``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json", response.text
    assert list(response.json()) == ["detail"] and why in response.json()["detail"], response.text


def response_schema(client) -> Draft202012Validator:
    """A validator of /api/predict's 200 answer against the schema the app publishes at /openapi.json."""
    document = client.get("/openapi.json").json()
    answer = document["paths"]["/api/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    schema = {**answer, "components": document["components"]}
    Draft202012Validator.check_schema(schema)  # OpenAPI 3.1's schemas are JSON Schema 2020-12
    return Draft202012Validator(schema)


def test_multipart_answer_is_the_recognizers_json(client, model_path, canvas_png):
    response = post_file(client, canvas_png)
    assert response.status_code == 200
    assert response.json() == Recognizer(model_path).read(canvas_png).to_dict()


def test_a_classifier_reading_is_one_line_and_the_schema_describes_it(client, canvas_png):
    answer = post_file(client, canvas_png, probabilities="true").json()
    response_schema(client).validate(answer)
    [line] = answer["lines"]  # a classifier reads one line: the digits it found, left to right
    assert line["text"] == answer["text"] == "1"
    assert line["digits"] == answer["digits"]  # with their probabilities too
    (x, y, w, h), (dx, dy, dw, dh) = line["box"], answer["digits"][0]["box"]
    assert (x, y, w, h) == (dx, dy, dw, dh)  # one digit: the line's box is the digit's


def test_a_picture_without_digits_has_no_lines(client):
    answer = post_file(client, png_bytes(Image.new("L", (112, 112), 255))).json()
    assert answer == {"text": "", "digits": [], "lines": []}
    response_schema(client).validate(answer)


def test_a_line_model_answers_lines_in_the_same_shape(sevens_line_model_path, two_lines_png):
    """Served, a line model's reading is the recognizer's JSON and fits the published schema: a stroke on each of
    two rows is two lines, top to bottom, and ``text`` is their texts joined by a newline."""
    with TestClient(create_app(ServeSettings(model_path=str(sevens_line_model_path)))) as client:
        answer = post_file(client, two_lines_png).json()
        detailed = post_file(client, two_lines_png, probabilities="true").json()
        response_schema(client).validate(detailed)
    assert answer == Recognizer(sevens_line_model_path).read(two_lines_png).to_dict()
    assert answer["text"] == "7\n7" and [line["text"] for line in answer["lines"]] == ["7", "7"]
    tops = [line["box"][1] for line in answer["lines"]]
    assert tops[0] < 100 < 200 < tops[1], tops  # the first line is the upper stroke
    assert detailed["digits"] == [digit for line in detailed["lines"] for digit in line["digits"]]
    assert all(len(digit["probabilities"]) == 10 for digit in detailed["digits"])


def test_a_16_bit_picture_is_read_as_its_8_bit_copy(client, canvas_png):
    grey = np.asarray(Image.open(io.BytesIO(canvas_png)).convert("L"))
    deep = png_bytes(Image.fromarray(grey.astype(np.uint16) * 257))  # clipped at 255, it was a white page
    eight_bit = post_file(client, png_bytes(Image.fromarray(grey))).json()
    assert eight_bit["text"] == "1"
    assert post_file(client, deep).json() == eight_bit


def test_json_data_url_bare_base64_and_raw_body_give_the_same_answer(client, canvas_png):
    expected = post_file(client, canvas_png).json()
    encoded = base64.b64encode(canvas_png).decode()
    assert client.post("/api/predict", json={"image": f"data:image/png;base64,{encoded}"}).json() == expected
    assert client.post("/api/predict", json={"image": encoded}).json() == expected
    raw = client.post("/api/predict", content=canvas_png, headers={"content-type": "image/png"})
    assert raw.json() == expected


def test_probabilities_on_request(client, canvas_png):
    digits = post_file(client, canvas_png, probabilities="true").json()["digits"]
    assert digits
    for digit in digits:
        assert len(digit["probabilities"]) == 10
        assert sum(digit["probabilities"]) == pytest.approx(1, abs=1e-4)
        assert int(np.argmax(digit["probabilities"])) == digit["digit"]
    assert "probabilities" not in post_file(client, canvas_png).json()["digits"][0]


@pytest.mark.parametrize("content_type", ["image/png", "application/json", "text/plain"])
def test_body_over_the_limit_is_413_as_json(client, content_type):
    # Content-Length declared over the limit: answered before the body is read, whatever its type.
    response = client.post("/api/predict", content=b"\0" * (10 * MB + 1), headers={"content-type": content_type})
    assert_error(response, 413, "limit of 10,485,760 bytes")


def test_streamed_body_over_the_limit_is_413_as_json(client):
    chunks = (b"\0" * MB for _ in range(11))  # no Content-Length: counted as it arrives
    response = client.post("/api/predict", content=chunks, headers={"content-type": "image/png"})
    assert_error(response, 413, "limit of 10,485,760 bytes")


def test_limit_comes_from_settings(model_path, canvas_png):
    limit = len(canvas_png) // 2
    with TestClient(create_app(ServeSettings(model_path=str(model_path), max_body_bytes=limit))) as small:
        assert_error(post_file(small, canvas_png), 413, f"limit of {limit:,} bytes")


@pytest.fixture(scope="module")
def server(model_path):
    """The base URL of a real `digitocr serve` of the untrained model, on a free loopback port."""
    with running_server(model_path) as base:
        yield base


def raw_request(server: str, head: bytes, chunks=()) -> tuple[int, str, dict]:
    """Send ``head`` and then ``chunks`` on one socket; the answer's status, content type and JSON body."""
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(head)
        for chunk in chunks:
            try:
                connection.sendall(chunk)
            except OSError:  # the server answered and closed while we were still sending
                break
        answer = http.client.HTTPResponse(connection)
        answer.begin()
        return answer.status, answer.getheader("content-type"), json.loads(answer.read())


def test_real_server_refuses_a_declared_large_body_without_reading_it(server):
    head = b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n" % (50 * MB)
    answer = raw_request(server, head)  # none of the 50 MB is ever sent
    assert answer == (413, "application/json", {"detail": "the body is over the server's limit of 10,485,760 bytes"})


def test_real_server_cuts_off_a_streamed_body_at_the_limit(server):
    head = b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"%x\r\n%s\r\n" % (MB, b"\0" * MB)
    answer = raw_request(server, head, [chunk] * 11)  # 11 MB of a body that never ends
    assert answer == (413, "application/json", {"detail": "the body is over the server's limit of 10,485,760 bytes"})


def truncated(png: bytes) -> bytes:
    return png[: len(png) // 2]


def bomb(side: int) -> bytes:
    """A side x side PNG of zeros: a few kB on the wire, side**2 pixels once decoded."""
    return png_bytes(Image.new("1", (side, side)))


@pytest.mark.parametrize(
    "make, why",
    [
        (lambda png: b"this is not a picture", "not a picture"),
        (truncated, "truncated"),
        (lambda png: bomb(8_000), "bomb"),  # over the server's 40-megapixel limit
        (lambda png: bomb(10_000), "bomb"),  # over Pillow's own limit too
        (lambda png: b"", "empty"),
    ],
)
def test_bad_pictures_are_400_saying_why(client, canvas_png, make, why):
    assert_error(post_file(client, make(canvas_png)), 400, why)


@pytest.mark.parametrize(
    "body, why",
    [
        ({"image": "not base64 !!!"}, "base64"),
        ({"image": "data:image/png,plain"}, "base64"),
        ({"picture": "..."}, '{"image"'),
        (["image"], '{"image"'),
        ({"image": 42}, '{"image"'),
        ({"image": ""}, "empty"),
    ],
)
def test_bad_json_envelopes_are_400(client, body, why):
    assert_error(client.post("/api/predict", json=body), 400, why)


@pytest.mark.parametrize(
    "body, why",
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),  # a RecursionError in json, once a 500
        (b'{"a": ' * 100_000, "nested too deeply"),
        (b'{"image": "", "n": ' + b"1" * 5000 + b"}", "not valid JSON"),  # over Python's 4,300-digit int limit
    ],
)
def test_json_that_python_cannot_parse_is_400(client, body, why):
    assert_error(client.post("/api/predict", content=body, headers={"content-type": "application/json"}), 400, why)


def test_schema_says_the_json_image_is_a_non_empty_picture(client):
    predict = client.get("/openapi.json").json()["paths"]["/api/predict"]["post"]
    image = predict["requestBody"]["content"]["application/json"]["schema"]["properties"]["image"]
    assert image["type"] == "string" and image["minLength"] == 1 and "non-empty picture" in image["description"]
    for status in ("400", "413", "415"):  # each error as it is sent: JSON {"detail": "..."}
        assert predict["responses"][status]["content"] == {
            "application/json": {"schema": {"$ref": "#/components/schemas/ErrorDetail"}}
        }
    assert "plain text" not in json.dumps(predict["responses"])


def test_invalid_json_and_missing_field_are_400(client):
    assert_error(
        client.post("/api/predict", content=b"{nope", headers={"content-type": "application/json"}), 400, "JSON"
    )
    assert_error(client.post("/api/predict", files={"photo": ("a.png", b"x", "image/png")}), 400, "'image'")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None])
def test_other_content_types_are_415(client, canvas_png, content_type):
    headers = {"content-type": content_type} if content_type else {}
    assert_error(client.post("/api/predict", content=canvas_png, headers=headers), 415, "multipart/form-data")


def test_health_model_card_and_openapi(client, model_path):
    assert client.get("/api/health").json() == {"status": "ok", "model": str(model_path)}
    card = client.get("/api/model").json()
    assert card["name"] == str(model_path)
    assert card["architecture"] == "mlp"
    assert card["parameters"] == sum(p.numel() for p in build_model(TrainConfig().model).parameters())
    assert card["model"]["hidden"] == [256]
    body = client.get("/openapi.json").json()["paths"]["/api/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(body)


def test_page_and_its_files_need_nothing_from_outside(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for element in ('id="pad"', 'id="clear"', 'id="prediction"', 'id="photo"', 'id="bars"'):
        assert element in page.text
    for path in STATIC.iterdir():
        assert client.get(f"/static/{path.name}").status_code == 200
        assert not re.search(
            r"""(src|href)=["']?(https?:)?//|url\(["']?(https?:)?//|import\s.*https?://""", path.read_text()
        ), f"{path.name} loads something from another site"


# ---- fuzzing: whatever arrives, the answer is never a 5xx --------------------------------------------------------

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ANSWERS = {200, 400, 413, 415}


@FUZZ
@given(
    data=st.binary(max_size=2000),
    content_type=st.sampled_from(
        ["image/png", "image/jpeg", "application/json", "multipart/form-data", "text/plain", "", "image/gif; x=1"]
    ),
)
def test_fuzz_raw_bodies(client, data, content_type):
    headers = {"content-type": content_type} if content_type else {}
    assert client.post("/api/predict", content=data, headers=headers).status_code in ANSWERS


@FUZZ
@given(data=st.binary(max_size=2000))
def test_fuzz_multipart_files(client, data):
    assert post_file(client, data).status_code in {200, 400}


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


@FUZZ
@given(document=JSON_VALUES | st.fixed_dictionaries({"image": st.text(max_size=200) | JSON_VALUES}))
def test_fuzz_json(client, document):
    body = json.dumps(document).encode()  # not json=: httpx sends no body at all for json=None
    response = client.post("/api/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code in {200, 400}


@FUZZ
@given(
    pixels=arrays(np.uint8, st.tuples(st.integers(1, 64), st.integers(1, 64))),
    mode=st.sampled_from(["L", "RGB", "RGBA", "P", "1", "I;16"]),
    form=st.sampled_from(["PNG", "GIF", "BMP", "TIFF", "WEBP", "JPEG"]),
)
def test_fuzz_real_pictures_are_read(client, pixels, mode, form):
    """Any small picture in any common format and mode gets well-formed JSON: the digits, or (say the reader
    finds a 1x1 picture too small) 400 saying why; never a 500."""
    picture = Image.fromarray(pixels).convert(mode)
    writable = {"JPEG": ("L", "RGB"), "WEBP": ("L", "RGB"), "GIF": ("L", "P", "1"), "BMP": ("L", "RGB", "P", "1")}
    if mode not in writable.get(form, (mode,)):
        picture = picture.convert("RGB" if form != "GIF" else "L")
    buffer = io.BytesIO()
    picture.save(buffer, form)
    response = post_file(client, buffer.getvalue(), name=f"fuzz.{form.lower()}")
    assert response.status_code in {200, 400}, response.text
    answer = response.json()
    if response.status_code == 400:
        assert isinstance(answer["detail"], str)
        return
    assert isinstance(answer["text"], str)
    assert all(0 <= d["digit"] <= 9 and len(d["box"]) == 4 for d in answer["digits"])


def test_serve_without_a_model_says_how_to_make_one(tmp_path, capsys):
    from digitocr.cli import main

    assert main(["serve", "--model", str(tmp_path / "missing.pth")]) != 0
    error = capsys.readouterr().err
    assert "digitocr train" in error and "Traceback" not in error


def test_serve_with_a_damaged_model_fails_in_one_line(tmp_path, capsys):
    from digitocr.cli import main

    damaged = tmp_path / "damaged.pth"
    damaged.write_bytes(b"not a model")
    assert main(["serve", "--model", str(damaged)]) != 0
    assert "not a readable digitocr model" in capsys.readouterr().err


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(model_path):
    """Pictures of requests arriving together are read as one batch; a bad one fails alone."""
    import asyncio

    from digitocr.serve.batching import ReadBatcher

    recognizer = Recognizer(model_path)
    calls = []  # the model's batch sizes: one call means one pass through the stages and the model
    probabilities = recognizer.backend.probabilities
    recognizer.backend.probabilities = lambda images: calls.append(len(images)) or probabilities(images)
    one, seven = Image.new("L", (160, 160), 255), Image.new("L", (160, 160), 255)
    ImageDraw.Draw(one).line([(80, 20), (80, 140)], fill=0, width=14)
    ImageDraw.Draw(seven).line([(40, 30), (120, 30), (70, 140)], fill=0, width=14)
    one, seven = png_bytes(one), png_bytes(seven)

    async def all_at_once(pictures):
        batcher = ReadBatcher(recognizer)
        return await asyncio.gather(*(batcher.read(picture) for picture in pictures), return_exceptions=True)

    alone = [recognizer.read(one).text, recognizer.read(seven).text]
    calls.clear()
    answers = asyncio.run(all_at_once([one, seven] * 6))
    assert [answer.text for answer in answers] == alone * 6
    assert calls == [12]  # one pass through the stages and the model for all twelve requests (a digit each)
    calls.clear()
    answers = asyncio.run(all_at_once([one, b"not a picture", seven, truncated(seven)]))
    assert [answers[0].text, answers[2].text] == alone and calls == [2]
    assert isinstance(answers[1], ImageError) and isinstance(answers[3], ImageError)
