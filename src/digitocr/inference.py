"""A model's forward pass on a split, as training (validation each epoch) and evaluation both need it: in eval
mode, by batches, on the model's device; accuracy counted over torchrun's ranks; test-time shifts; and the
line model's columns and exact-line accuracy."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from digitocr import ctc, distributed
from digitocr.config import LINE_STRIDE, NUM_CLASSES
from digitocr.data import Split
from digitocr.data.augment import shift_images


@torch.no_grad()
def predict_logits(model: nn.Module, images: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Logits (N, 10) of images (N, 1, 28, 28) in [0, 1], in eval mode, on the model's device."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outputs = [model(images[start : start + batch_size].to(device)) for start in range(0, len(images), batch_size)]
    model.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0, NUM_CLASSES)


def accuracy(model: nn.Module, split: Split) -> float:
    """Share of ``split`` classified right; under torchrun each rank counts its shard and the counts are summed."""
    if len(split) == 0:
        return math.nan
    index = distributed.shard(torch.arange(len(split), device=split.labels.device), drop_remainder=False)
    predictions = predict_logits(distributed.unwrap(model), split.images[index]).argmax(1)
    correct = (predictions == split.labels[index].to(predictions.device)).sum().item()
    correct, total = distributed.all_reduce_sum(correct, len(index))
    return correct / total


class ShiftTTA(nn.Module):
    """Test-time augmentation: log of the mean class probabilities over the image and its 1-pixel shifts."""

    SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))  # (dx, dy) in pixels

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        views = torch.cat([shift_images(x, dx, dy) for dx, dy in self.SHIFTS])
        probabilities = self.model(views).float().softmax(1).view(len(self.SHIFTS), len(x), -1).mean(0)
        return probabilities.log()


@torch.no_grad()
def line_columns(model: nn.Module, images: torch.Tensor, widths: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """A line model's per-column probabilities of a batch of lines -> (probabilities (N, T, 11), columns (N,):
    how many of each line's columns are its own, the rest being padding)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    probabilities = model(images.to(device)).float().softmax(-1).cpu().numpy()
    model.train(was_training)
    return probabilities, (widths // LINE_STRIDE).numpy()


def line_accuracy(model: nn.Module, batches) -> float:
    """Share of lines read exactly (every digit, nothing more) over ``batches`` of ``data.lines.LineBatch``."""
    right = total = 0
    for batch in batches:
        probabilities, columns = line_columns(distributed.unwrap(model), batch.images, batch.widths)
        right += sum(read == truth for read, truth in zip(ctc.texts(probabilities, columns), batch.texts()))
        total += len(batch)
    return right / total if total else math.nan
