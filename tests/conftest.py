"""Shared fixtures: tiny IDX files the tests write, real MNIST (in the user's data folder), models, a database."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from postgres import ServerError, server

from digitocr.data import MNIST_FILES, ensure_mnist, raw_dir


def write_idx_images(path: Path, images: np.ndarray) -> None:
    """IDX3 as in the MNIST files: magic 2051, count, rows, cols (big-endian), then uint8 pixels."""
    count, rows, cols = images.shape
    path.write_bytes(struct.pack(">IIII", 2051, count, rows, cols) + images.astype(np.uint8).tobytes())


def write_idx_labels(path: Path, labels: np.ndarray) -> None:
    path.write_bytes(struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_mnist(tmp_path) -> tuple[Path, dict[str, str]]:
    """A data folder with a 200 + 50 image fake MNIST, and the checksums that make it pass verification."""
    rng = np.random.default_rng(0)
    folder = raw_dir(tmp_path)
    folder.mkdir(parents=True)
    files = {
        "train-images-idx3-ubyte": lambda p: write_idx_images(p, rng.integers(0, 256, (200, 28, 28))),
        "train-labels-idx1-ubyte": lambda p: write_idx_labels(p, np.arange(200) % 10),
        "t10k-images-idx3-ubyte": lambda p: write_idx_images(p, rng.integers(0, 256, (50, 28, 28))),
        "t10k-labels-idx1-ubyte": lambda p: write_idx_labels(p, np.arange(50) % 10),
    }
    checksums = {}
    for name, write in files.items():
        write(folder / name)
        checksums[name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    assert set(checksums) == set(MNIST_FILES)
    return tmp_path, checksums


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a database on a throwaway PostgreSQL server (tests/postgres.py), for the whole session."""
    try:
        with server() as url:
            yield url
    except ServerError as error:  # never a skip: `make test` installs the server or says what to install
        pytest.fail(f"no PostgreSQL server for the tuning tests: {error}", pytrace=False)


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """Real, verified MNIST in the default data folder ($DIGITOCR_DATA or ~/.cache/digitocr), fetched once."""
    return ensure_mnist()


@pytest.fixture(scope="session")
def trained_model_path(tmp_path_factory, mnist_root) -> Path:
    """A default MLP trained once on real MNIST for the tests that need a real model."""
    from digitocr.pipeline import train

    path = tmp_path_factory.mktemp("model") / "trained_model.pth"
    torch.manual_seed(0)
    train(out=path)
    return path


@pytest.fixture(scope="session")
def untrained_model_path(tmp_path_factory) -> Path:
    """A real model file of the default MLP with random weights and made-up test metrics: enough where a test is
    about files, pictures or commands rather than digits (and export does not evaluate it on MNIST)."""
    from digitocr.config import TrainConfig
    from digitocr.modelfile import save_model
    from digitocr.models import build_model

    torch.manual_seed(0)
    config = TrainConfig()
    per_class = {str(d): {"precision": 0.1, "recall": 0.1, "f1": 0.1, "support": 1000} for d in range(10)}
    path = tmp_path_factory.mktemp("untrained") / "model.pth"
    metrics = {"test_accuracy": 0.1, "per_class": per_class}
    return save_model(path, build_model(config.model).eval(), config, data_sha256="0" * 64, metrics=metrics)


@pytest.fixture(scope="session")
def untrained_line_model_path(tmp_path_factory) -> Path:
    """A real model file of a line model with random weights, batch-norm statistics moved off their initial values
    (so that they count in every comparison), and only the figure its trainer stores: exact-string accuracy."""
    from digitocr.config import ModelConfig, TrainConfig
    from digitocr.modelfile import save_model
    from digitocr.models import build_model, example_input

    torch.manual_seed(0)
    config = TrainConfig(model=ModelConfig(name="line", channels=(16, 32, 64, 96), context=(128, 128)))
    model = build_model(config.model).train()
    with torch.no_grad():
        model(example_input(lines=True, batch=8))
    path = tmp_path_factory.mktemp("untrained-line") / "line.pth"
    return save_model(path, model.eval(), config, data_sha256="1" * 64, metrics={"test_accuracy": 0.25})


@pytest.fixture(scope="session")
def sevens_line_model_path(untrained_line_model_path, tmp_path_factory) -> Path:
    """A line model that reads every column as a confident 7, so that greedy CTC decoding reads each line of a
    picture as one "7": a multi-line answer whose text is known, for the code around the reading."""
    from digitocr.config import NUM_CLASSES
    from digitocr.modelfile import read_model_file, save_model

    model_file = read_model_file(untrained_line_model_path)
    with torch.no_grad():
        model_file.model.head.bias.copy_(torch.tensor([50.0 if k == 7 else 0.0 for k in range(NUM_CLASSES + 1)]))
    return save_model(tmp_path_factory.mktemp("sevens") / "sevens.pth", model_file.model, model_file.config)


@pytest.fixture(scope="session")
def two_lines_png() -> bytes:
    """A 400x400 page with a stroke on each of two rows: two lines of writing, one above the other."""
    import io

    from PIL import Image, ImageDraw

    picture = Image.new("L", (400, 400), "white")
    for y in (40, 240):
        ImageDraw.Draw(picture).line([(200, y), (200, y + 120)], fill="black", width=25)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()
