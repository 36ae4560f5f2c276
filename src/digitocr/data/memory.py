"""MNIST as tensors in memory: one tensor per split, a seeded validation split, and batches by index.

Training never iterates a per-sample DataLoader: decoding 60,000 PIL images per epoch costs far more than the
arithmetic of a small network. The verified IDX files are parsed here (a big-endian header, then raw uint8) into
tensors that share the bytes read, and scaled once to [0, 1]; not through torchvision, whose import alone
(~1.2 s: it pulls torch._dynamo and sympy) takes half as long as the default training loop.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from digitocr.config import IMAGE_SIZE, NUM_CLASSES
from digitocr.data.sources import MNIST_FILES, Log, raw_dir, resolve_data_dir, silent, verified_mnist_bytes
from digitocr.errors import DataError

# IDX magic numbers: 0x08 = unsigned bytes, then the number of dimensions (3 for images, 1 for labels).
IMAGES_MAGIC, LABELS_MAGIC = 0x0803, 0x0801
SPLIT_FILES = {  # train -> (images file, labels file)
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass
class Split:
    """Images (N, 1, 28, 28) float32 in [0, 1] and labels (N,) int64."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device | str) -> Split:
        return Split(self.images.to(device), self.labels.to(device))


@dataclass
class MNISTData:
    train: Split
    val: Split
    test: Split
    sha256: str  # of the raw training and test bytes, stored in every model file trained on them


def parse_idx_images(content: bytearray, path: os.PathLike | str) -> torch.Tensor:
    """uint8 (N, 28, 28) sharing ``content``'s memory; DataError naming ``path`` unless it holds N 28x28 images."""
    magic, count, rows, cols = struct.unpack_from(">IIII", content) if len(content) >= 16 else (0, 0, 0, 0)
    if magic != IMAGES_MAGIC:
        raise DataError(f"{path} is not an IDX image file (magic {magic}, expected {IMAGES_MAGIC})")
    if (rows, cols) != (IMAGE_SIZE, IMAGE_SIZE) or len(content) != 16 + count * rows * cols:
        raise DataError(
            f"{path} does not hold {IMAGE_SIZE}x{IMAGE_SIZE} images: its header says {count} of "
            f"{rows}x{cols}, its size is {len(content)} bytes"
        )
    return torch.from_numpy(np.frombuffer(content, np.uint8, offset=16).reshape(count, rows, cols))


def parse_idx_labels(content: bytearray, path: os.PathLike | str) -> torch.Tensor:
    """int64 (N,) digits; DataError naming ``path`` unless it holds N labels, each 0-9."""
    magic, count = struct.unpack_from(">II", content) if len(content) >= 8 else (0, 0)
    if magic != LABELS_MAGIC:
        raise DataError(f"{path} is not an IDX label file (magic {magic}, expected {LABELS_MAGIC})")
    if len(content) != 8 + count:
        raise DataError(f"{path} does not hold the {count} labels its header says (size {len(content)} bytes)")
    labels = np.frombuffer(content, np.uint8, offset=8)
    wrong = np.flatnonzero(labels >= NUM_CLASSES)
    if len(wrong):
        raise DataError(
            f"{path} has {len(wrong)} labels outside 0-{NUM_CLASSES - 1} "
            f"(the first, {labels[wrong[0]]}, at index {wrong[0]})"
        )
    return torch.from_numpy(labels).long()


def _parse_split(files: dict[str, bytearray], folder: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    images_name, labels_name = SPLIT_FILES[train]
    images = parse_idx_images(files[images_name], folder / images_name)
    labels = parse_idx_labels(files[labels_name], folder / labels_name)
    if len(images) != len(labels):
        raise DataError(
            f"{folder / images_name} holds {len(images)} images but {folder / labels_name} {len(labels)} labels"
        )
    return images, labels


def read_mnist(
    data_dir: str | os.PathLike | None = None,
    train: bool = True,
    log: Log = silent,
    checksums: dict[str, str] = MNIST_FILES,
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (N, 28, 28) and int64 labels of the MNIST training or test set, fetched if needed.

    The same tensors as ``torchvision.datasets.MNIST(data_dir, train).data`` / ``.targets`` (tested).
    """
    files = verified_mnist_bytes(data_dir, SPLIT_FILES[train], log=log, checksums=checksums)
    return _parse_split(files, raw_dir(resolve_data_dir(data_dir)), train)


def to_float_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1], the input contract of every model."""
    return images.unsqueeze(1).float().div_(255)


def split_off_validation(images: torch.Tensor, labels: torch.Tensor, val_size: int, seed: int) -> tuple[Split, Split]:
    """A seeded random hold-out of ``val_size`` images; the rest is for training."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    val_index, train_index = order[:val_size], order[val_size:]
    return Split(images[train_index], labels[train_index]), Split(images[val_index], labels[val_index])


def fingerprint(*tensors: torch.Tensor) -> str:
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.contiguous().numpy())  # hashes the buffer itself, no copy
    return digest.hexdigest()


def load_mnist(
    data_dir: str | os.PathLike | None = None,
    val_size: int = 5000,
    seed: int = 0,
    log: Log = silent,
    checksums: dict[str, str] = MNIST_FILES,
) -> MNISTData:
    """Train / validation / test splits of MNIST in memory. The test split is only for the final report."""
    files = verified_mnist_bytes(data_dir, log=log, checksums=checksums)
    folder = raw_dir(resolve_data_dir(data_dir))
    train_images, train_labels = _parse_split(files, folder, train=True)
    test_images, test_labels = _parse_split(files, folder, train=False)
    sha256 = fingerprint(train_images, train_labels, test_images, test_labels)
    train, val = split_off_validation(to_float_images(train_images), train_labels, val_size, seed)
    return MNISTData(train=train, val=val, test=Split(to_float_images(test_images), test_labels), sha256=sha256)


def shuffled_batches(
    split: Split,
    batch_size: int,
    generator: torch.Generator,
    skip: int = 0,
    shard: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of a fresh random permutation, taken by index; the last incomplete batch is dropped.

    ``skip`` leaves out the first batches (resuming mid-epoch from the same generator state). ``shard`` picks
    this process's part of the permutation when several train together (``digitocr.distributed.shard``).
    """
    order = torch.randperm(len(split), generator=generator).to(split.labels.device)
    if shard is not None:
        order = shard(order)
    for start in range(skip * batch_size, len(order) - batch_size + 1, batch_size):
        index = order[start : start + batch_size]
        yield split.images[index], split.labels[index]


def batches_per_epoch(split: Split, batch_size: int) -> int:
    return len(split) // batch_size
