"""MNIST as tensors in memory: one tensor per split, a seeded validation split, and batches by index.

Training never iterates a per-sample DataLoader: decoding 60,000 PIL images per epoch costs far more than the
arithmetic of a small network. The images are read once through torchvision and scaled once to [0, 1].
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from digitocr.data.sources import MNIST_FILES, Log, ensure_mnist, log_to_stderr


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


def read_mnist(data_dir: str | os.PathLike | None = None, train: bool = True, log: Log = log_to_stderr,
               checksums: dict[str, str] = MNIST_FILES) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (N, 28, 28) and int64 labels of the MNIST training or test set, fetched if needed."""
    from torchvision.datasets import MNIST

    root = ensure_mnist(data_dir, log=log, checksums=checksums)
    dataset = MNIST(str(root), train=train, download=False)
    return dataset.data, dataset.targets


def to_float_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1], the input contract of every model."""
    return images.unsqueeze(1).float().div_(255)


def split_off_validation(images: torch.Tensor, labels: torch.Tensor, val_size: int,
                         seed: int) -> tuple[Split, Split]:
    """A seeded random hold-out of ``val_size`` images; the rest is for training."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    val_index, train_index = order[:val_size], order[val_size:]
    return Split(images[train_index], labels[train_index]), Split(images[val_index], labels[val_index])


def fingerprint(*tensors: torch.Tensor) -> str:
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def load_mnist(data_dir: str | os.PathLike | None = None, val_size: int = 5000, seed: int = 0,
               log: Log = log_to_stderr, checksums: dict[str, str] = MNIST_FILES) -> MNISTData:
    """Train / validation / test splits of MNIST in memory. The test split is only for the final report."""
    train_images, train_labels = read_mnist(data_dir, train=True, log=log, checksums=checksums)
    test_images, test_labels = read_mnist(data_dir, train=False, log=lambda message: None, checksums=checksums)
    sha256 = fingerprint(train_images, train_labels, test_images, test_labels)
    train, val = split_off_validation(to_float_images(train_images), train_labels, val_size, seed)
    return MNISTData(train=train, val=val, test=Split(to_float_images(test_images), test_labels), sha256=sha256)


def shuffled_batches(split: Split, batch_size: int, generator: torch.Generator, skip: int = 0,
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
        index = order[start:start + batch_size]
        yield split.images[index], split.labels[index]


def batches_per_epoch(split: Split, batch_size: int) -> int:
    return len(split) // batch_size
