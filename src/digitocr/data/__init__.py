"""MNIST for digitocr: fetched and verified (``sources``), held in memory as tensors (``memory``)."""

from digitocr.data.memory import (
    MNISTData,
    Split,
    batches_per_epoch,
    load_mnist,
    read_mnist,
    shuffled_batches,
    split_off_validation,
    to_float_images,
)
from digitocr.data.sources import MNIST_FILES, ensure_mnist, raw_dir, resolve_data_dir

__all__ = [
    "MNIST_FILES",
    "MNISTData",
    "Split",
    "batches_per_epoch",
    "ensure_mnist",
    "load_mnist",
    "raw_dir",
    "read_mnist",
    "resolve_data_dir",
    "shuffled_batches",
    "split_off_validation",
    "to_float_images",
]
