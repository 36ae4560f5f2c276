"""A replica of PyTorch's examples/mnist CNN recipe, an anchor of the benchmark table (benchmarks/compare.py).

Conv32-Conv64-maxpool-dropout-FC128-dropout-FC10, Adadelta lr 1.0, StepLR gamma 0.7, batch 64, per-sample
``ToTensor`` + ``Normalize`` through a DataLoader, as the original trains it (its default is 14 epochs).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from digitocr.config import MNIST_MEAN, MNIST_STD


class PyTorchExampleNet(nn.Module):
    """pytorch/examples mnist/main.py ``Net``, unchanged (its 9216 = 64 * 12 * 12 included)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(self.dropout1(x), 1)
        x = self.dropout2(F.relu(self.fc1(x)))
        return F.log_softmax(self.fc2(x), dim=1)


def _first(dataset, limit: int | None):
    return Subset(dataset, range(min(limit, len(dataset)))) if limit else dataset


@torch.no_grad()
def _test_accuracy(model: nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = sum((model(images).argmax(1) == labels).sum().item() for images, labels in loader)
    model.train()
    return correct / len(loader.dataset)


def train_pytorch_example(
    data_root, epochs: int = 14, seed: int = 0, limit: int | None = None, test_limit: int | None = None
) -> list[tuple[float, float]]:
    """Per epoch: (training seconds so far, test accuracy), as ``replica.train_replica``.

    ``limit`` / ``test_limit`` keep only the first training / test images (quick runs). The clock covers
    building the datasets and training, not the per-epoch test pass.
    """
    torch.manual_seed(seed)
    started = time.perf_counter()
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))])
    train_set = _first(datasets.MNIST(str(data_root), train=True, download=False, transform=transform), limit)
    test_set = _first(datasets.MNIST(str(data_root), train=False, download=False, transform=transform), test_limit)
    loader, test_loader = DataLoader(train_set, batch_size=64, shuffle=True), DataLoader(test_set, batch_size=1000)
    model = PyTorchExampleNet()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    results, paused = [], 0.0
    model.train()
    for _ in range(epochs):
        for images, labels in loader:
            optimizer.zero_grad()
            F.nll_loss(model(images), labels).backward()
            optimizer.step()
        scheduler.step()
        seconds = time.perf_counter() - started - paused
        evaluation_started = time.perf_counter()
        results.append((seconds, _test_accuracy(model, test_loader)))
        paused += time.perf_counter() - evaluation_started
    return results
