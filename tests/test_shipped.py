"""The models that ship in the package (the reader, a digit classifier, and the line reader): never hand-edited
(digests match their cards), they read pictures as well as their cards say, and `Recognizer()`, `digitocr predict`
and `digitocr models` use the reader with no model given."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import venv

import numpy as np
import pytest
import torch

from digitocr.catalog import CATALOG, DEFAULT_READER, LINE_READER, SHIPPED_DIR, resolve_model
from digitocr.cli import main
from digitocr.config import LinesConfig, TrainConfig
from digitocr.data import load_mnist
from digitocr.data.lines import fixed_lines
from digitocr.modelfile import CONTENT_DIGEST, read_model_file
from digitocr.reading import Recognizer
from digitocr.testing.pictures import make_samples

SHIPPED = CATALOG[DEFAULT_READER]
SIZE_LIMIT = 5_000_000  # bytes: every shipped model file, ONNX copy and card together (the limit)
# The synthetic check reads PICTURES pictures per category with another seed than the card's run. At 200 pictures
# and ~95 % accuracy one binomial standard deviation is ~1.5 points: six points below the card is four of them,
# so the test fails for a worse model, not for an unlucky draw.
PICTURES = 200
MARGIN = 0.06
# Single digits, numbers and pictures with no digits (read as "", not as digits) for both; touching digits and
# several lines too for the line reader, made for them.
CHECKED_CATEGORIES = {
    DEFAULT_READER: ("photo", "canvas", "font", "number", "edge"),
    LINE_READER: ("photo", "canvas", "font", "number", "touching", "lines", "edge"),
}
ONNX_PROBABILITY_TOLERANCE = 1e-4  # onnxruntime's kernels against torch's on softmax outputs of size 10 or 11


@pytest.fixture(scope="module", params=list(CATALOG))
def shipped(request):
    return CATALOG[request.param]


def test_the_shipped_files_are_the_ones_the_card_describes(shipped):
    card = shipped.card()
    payload = torch.load(shipped.torch_path, map_location="cpu", weights_only=True)  # no pickled code
    files = card["files"]
    assert payload[CONTENT_DIGEST] == files[shipped.torch_path.name][CONTENT_DIGEST]
    assert read_model_file(shipped.torch_path).metadata[CONTENT_DIGEST] == payload[CONTENT_DIGEST]  # verified
    assert hashlib.sha256(shipped.onnx_path.read_bytes()).hexdigest() == files[shipped.onnx_path.name]["sha256"]
    for name, described in files.items():
        assert (SHIPPED_DIR / name).stat().st_size == described["bytes"]
    assert payload["data_sha256"] == card["data_sha256"]
    assert TrainConfig.from_dict(payload["config"]) == TrainConfig.from_dict(card["recipe"]["config"])
    assert shipped.model_card_path.read_text().startswith("# Model card")


def test_what_ships_fits_the_size_limit():
    assert {path.name for path in SHIPPED_DIR.iterdir()} == {
        path.name
        for shipped in CATALOG.values()
        for path in (shipped.torch_path, shipped.onnx_path, shipped.card_path, shipped.model_card_path)
    }  # nothing else ships
    assert sum(path.stat().st_size for path in SHIPPED_DIR.iterdir()) <= SIZE_LIMIT


@pytest.mark.slow
def test_each_shipped_model_reads_as_well_as_its_card_says(shipped, mnist_root):
    val = load_mnist(log=lambda message: None).val
    images, labels = val.images[:, 0].numpy(), val.labels.numpy()
    reader = Recognizer(shipped.name)
    assert reader.model_path == shipped.onnx_path  # its ONNX copy, onnxruntime being installed
    figures = shipped.card()["figures"]["reading"]
    for offset, category in enumerate(CHECKED_CATEGORIES[shipped.name]):
        samples = make_samples(category, PICTURES, images, labels, seed=7_000 + offset)
        texts = [result.text for result in reader.read_many([sample.data for sample in samples])]
        measured = np.mean([text == sample.text for text, sample in zip(texts, samples)])
        assert measured >= figures[category] - MARGIN, category


def test_the_line_reader_reads_a_picture_alone_as_in_a_batch_of_longer_lines(mnist_root):
    """Alone, a line is its batch's widest; among longer lines it is padded with paper. The same digits either way
    (before lines got paper as far as the model reaches, 3 % of numbers read alone lost their last digit)."""
    test = load_mnist(log=lambda message: None).test
    samples = make_samples("number", 24, test.images[:, 0].numpy(), test.labels.numpy(), seed=7_200)
    samples += make_samples("lines", 4, test.images[:, 0].numpy(), test.labels.numpy(), seed=7_201)
    reader = Recognizer(LINE_READER)
    together = reader.read_many([sample.data for sample in samples])
    for sample, in_batch in zip(samples, together):
        alone = reader.read(sample.data)
        assert alone.text == in_batch.text
        confidences = [digit.confidence for digit in alone.digits], [digit.confidence for digit in in_batch.digits]
        assert np.allclose(*confidences, atol=1e-4)  # float noise of other batch widths only


# Digits filling tight crops (no margin, enlarged from small scans), MNIST test digits: read by the reader at 77 %
# dark on light and 24 % light on dark before such crops were read on a frame of paper, 89 % and 93 % since (the line
# reader 59 % / 14 % -> 84 % / 85 %; benchmarks/reading_accuracy.py, 300 pictures, 2026-12-02). The floor is 3.5
# binomial deviations of 200 pictures under the line reader's figure.
TIGHT_CROP_FLOOR = 0.75


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["tight-dark", "tight-light"])
def test_digits_filling_a_tight_crop_are_read_in_either_polarity(shipped, kind, mnist_root):
    test = load_mnist(log=lambda message: None).test
    samples = make_samples(kind, PICTURES, test.images[:, 0].numpy(), test.labels.numpy(), seed=7_100)
    texts = [result.text for result in Recognizer(shipped.name).read_many([sample.data for sample in samples])]
    assert np.mean([text == sample.text for text, sample in zip(texts, samples)]) >= TIGHT_CROP_FLOOR


def test_the_onnx_copy_computes_what_the_model_file_computes(shipped, mnist_root):
    data = load_mnist(log=lambda message: None)
    by_torch = Recognizer(shipped.name, backend="torch").backend
    by_onnx = Recognizer(shipped.name, backend="onnx").backend
    if by_torch.reads_lines:
        lines = next(fixed_lines(data.test, 64, LinesConfig(), seed=0))
        inputs, compute = lines.images[:, 0].numpy(), "columns"
    else:
        inputs, compute = data.test.images[:500, 0].numpy(), "probabilities"
    expected, computed = getattr(by_torch, compute)(inputs), getattr(by_onnx, compute)(inputs)
    assert np.abs(expected - computed).max() <= ONNX_PROBABILITY_TOLERANCE


def test_a_model_argument_is_a_shipped_name_or_a_path(tmp_path):
    assert resolve_model(None).path == SHIPPED.onnx_path  # onnxruntime is installed here
    assert resolve_model(None, backend="torch").path == SHIPPED.torch_path
    assert resolve_model("reader", backend="onnx").path == SHIPPED.onnx_path
    assert resolve_model("reader").label == "reader (shipped)"
    assert resolve_model(tmp_path / "m.onnx").backend == "onnx"
    assert resolve_model("./reader").path.name == "reader"  # a file of that name, not the shipped one


def test_predict_and_models_read_with_the_shipped_reader_by_default(tmp_path, capsys, mnist_root):
    test = load_mnist(log=lambda message: None).test
    sample = make_samples("number", 1, test.images[:200, 0].numpy(), test.labels[:200].numpy(), seed=3)[0]
    picture = tmp_path / "number.png"
    picture.write_bytes(sample.data)
    assert main(["predict", str(picture), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == Recognizer().read(sample.data).text
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert listing.startswith(f"{DEFAULT_READER} (default): cnn,") and "99.59% of MNIST test digits" in listing
    assert f"\n{LINE_READER}: line," in listing and "% of lines of MNIST test digits" in listing


@pytest.mark.slow
def test_a_runtime_install_without_torch_reads_a_picture(tmp_path, mnist_root):
    """The wheel of this checkout in a fresh venv with the `runtime` extra only (numpy, Pillow, onnxruntime)."""
    project = SHIPPED_DIR.parents[2]
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(wheels)]
    subprocess.run([*build, str(project)], check=True, timeout=600)
    (wheel,) = wheels.glob("digitocr-*.whl")
    environment = tmp_path / "runtime"
    venv.create(environment, with_pip=True)
    # Only what the venv holds: no PYTHONPATH pointing at this checkout's sources (or its egg-info).
    alone = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    python, digitocr = environment / "bin" / "python", environment / "bin" / "digitocr"
    install = [str(python), "-m", "pip", "install", "--quiet", f"{wheel}[runtime]"]
    subprocess.run(install, check=True, timeout=900, env=alone)
    assert subprocess.run([str(python), "-c", "import torch"], capture_output=True, env=alone).returncode != 0
    test = load_mnist(log=lambda message: None).test
    sample = make_samples("photo", 1, test.images[:100, 0].numpy(), test.labels[:100].numpy(), seed=5)[0]
    picture = tmp_path / "photo.png"
    picture.write_bytes(sample.data)
    read = subprocess.run([str(digitocr), "predict", str(picture), "--json"], capture_output=True, text=True, env=alone)
    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout)["text"] == Recognizer(backend="onnx").read(sample.data).text
    listed = subprocess.run([str(digitocr), "models"], capture_output=True, text=True, env=alone)
    assert listed.returncode == 0 and listed.stdout.startswith(DEFAULT_READER), listed.stderr


def test_the_server_reads_with_the_shipped_reader_and_says_so():
    from fastapi.testclient import TestClient

    from digitocr.serve import ServeSettings, create_app

    with TestClient(create_app(ServeSettings())) as client:
        assert client.get("/api/health").json() == {"status": "ok", "model": "reader (shipped)"}
        card = client.get("/api/model").json()
    assert card["name"] == "reader (shipped)" and card["path"] == str(SHIPPED.torch_path)
    assert card["architecture"] == "cnn"
