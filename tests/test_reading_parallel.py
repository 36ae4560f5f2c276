"""Reading large batches on worker processes: the same answers as one process, in order, errors in place."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from digitocr.cli import main
from digitocr.errors import ImageError
from digitocr.reading import Recognizer
from digitocr.reading.parallel import MIN_SHARE, _split
from digitocr.testing.pictures import make_samples

pytestmark = pytest.mark.slow

# Helpers run one thread each, the caller its own count: the batched resampling products add in another order
# there, which moves a float32 pixel in [0, 1] by a few ulps (1.8e-7 seen on an AVX2-only EPYC). 1e-5 is ~80 ulps
# of 1.0 and far below the 1/255 step of an 8-bit picture, so texts and boxes, which must agree, are unaffected.
IMAGE_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def pictures(mnist_root):
    """MNIST-sized arrays, paper photos and numbers as encoded files: every path through the reader."""
    from digitocr.data import load_mnist

    val = load_mnist(mnist_root, log=lambda message: None).val
    images, labels = val.images[:, 0].numpy(), val.labels.numpy()
    sources = list((images[: 3 * MIN_SHARE] * 255).astype(np.uint8))
    sources += [
        sample.data for kind in ("photo", "number") for sample in make_samples(kind, 20, images, labels, seed=21)
    ]
    return sources


def test_workers_read_what_one_process_reads_in_the_same_order(trained_model_path, pictures):
    alone = Recognizer(trained_model_path).read_many(pictures)
    with Recognizer(trained_model_path, workers=2) as recognizer:
        shared = recognizer.read_many(pictures)
        assert recognizer._pool is not None  # the batch really went to the workers
        each = recognizer.read_each([*pictures[:MIN_SHARE], b"not a picture", *pictures[MIN_SHARE:]])
    assert recognizer._pool is None  # closed with the block
    assert [r.text for r in shared] == [r.text for r in alone]
    for a, b in zip(shared, alone):
        assert [d.box for d in a.digits] == [d.box for d in b.digits]
        assert [d.confidence for d in a.digits] == pytest.approx([d.confidence for d in b.digits], abs=1e-5)
        assert all(np.allclose(x.image, y.image, rtol=0, atol=IMAGE_TOLERANCE) for x, y in zip(a.digits, b.digits))
    assert isinstance(each[MIN_SHARE], ImageError)
    assert [r.text for r in each[:MIN_SHARE] + each[MIN_SHARE + 1 :]] == [r.text for r in alone]


def test_a_bad_picture_in_a_worker_share_raises_its_error_in_the_caller(trained_model_path, pictures):
    with Recognizer(trained_model_path, workers=2) as recognizer:
        with pytest.raises(ImageError, match="not a picture"):
            recognizer.read_many([*pictures, b"not a picture"])
        assert recognizer.read_many(pictures[:3])[0].text  # small batches are read here, pool or not


def test_predict_with_workers_prints_what_it_prints_without(trained_model_path, pictures, tmp_path, capsys):
    files = []
    for number, data in enumerate(pictures[3 * MIN_SHARE :]):
        files.append(str(tmp_path / f"picture{number}.png"))
        (tmp_path / f"picture{number}.png").write_bytes(data)
    files.insert(5, str(tmp_path / "missing.png"))
    files = files * 2  # enough pictures for two shares
    assert main(["predict", *files, "--model", str(trained_model_path), "--json"]) == 1
    alone = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    threads = torch.get_num_threads()
    assert main(["predict", *files, "--model", str(trained_model_path), "--json", "--workers", "2"]) == 1
    assert torch.get_num_threads() == threads  # one thread while reading, the caller's setting back after
    shared = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["file"] for line in shared] == files
    assert [line.get("text") for line in shared] == [line.get("text") for line in alone]
    assert "error" in shared[5]


def test_shares_are_contiguous_and_even():
    assert _split(list(range(10)), 3) == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert _split([], 2) == [[], []]


def test_workers_must_be_a_positive_count_on_the_cpu(trained_model_path):
    with pytest.raises(ValueError, match="at least 1"):
        Recognizer(trained_model_path, workers=0)
    with pytest.raises(ValueError, match="CPU"):
        Recognizer(trained_model_path, device="cuda", workers=2)


def test_a_dead_worker_is_a_clear_error_and_the_next_batch_starts_new_ones(trained_model_path, pictures):
    from digitocr.errors import DigitOCRError

    with Recognizer(trained_model_path, workers=2) as recognizer:
        expected = [result.text for result in recognizer.read_many(pictures)]
        _, process = recognizer._pool._helpers[0]
        process.kill()
        process.join()
        with pytest.raises(DigitOCRError, match="died"):
            recognizer.read_many(pictures)
        assert [result.text for result in recognizer.read_many(pictures)] == expected
