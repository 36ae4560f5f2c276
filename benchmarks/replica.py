"""A faithful replica of the course notebook's approach, the baseline digitocr's benchmarks compare against.

Per-sample ``transforms.Compose([ToTensor(), Normalize, flatten])``, a DataLoader with batch 64, an MLP
784-128-64-10, Adam at 1e-3, and the test accuracy after each epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from digitocr.config import MNIST_MEAN, MNIST_STD


def replica_model() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def train_replica(
    data_root: str, epochs: int, on_epoch: Callable[[int, float, float], bool] | None = None, seed: int = 0
) -> list[tuple[float, float]]:
    """Per epoch: (training seconds so far, test accuracy). ``on_epoch(epoch, seconds, acc)`` returning True stops.

    The clock covers building the datasets and training; the per-epoch test evaluation is not counted,
    which favours the baseline.
    """
    torch.manual_seed(seed)
    started = time.perf_counter()
    transform = transforms.Compose(
        [
            transforms.ToTensor(),
            transforms.Normalize((MNIST_MEAN,), (MNIST_STD,)),
            transforms.Lambda(lambda x: x.view(-1)),
        ]
    )
    train_set = datasets.MNIST(data_root, train=True, download=False, transform=transform)
    test_set = datasets.MNIST(data_root, train=False, download=False, transform=transform)
    train_loader = DataLoader(train_set, batch_size=64, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=1000)
    model = replica_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_function = nn.CrossEntropyLoss()
    results, paused = [], 0.0
    for epoch in range(1, epochs + 1):
        model.train()
        for images, labels in train_loader:
            optimizer.zero_grad()
            loss_function(model(images), labels).backward()
            optimizer.step()
        seconds = time.perf_counter() - started - paused
        evaluation_started = time.perf_counter()
        accuracy = _test_accuracy(model, test_loader)
        paused += time.perf_counter() - evaluation_started
        results.append((seconds, accuracy))
        if on_epoch and on_epoch(epoch, seconds, accuracy):
            break
    return results


@torch.no_grad()
def _test_accuracy(model: nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = sum((model(images).argmax(1) == labels).sum().item() for images, labels in loader)
    return correct / len(loader.dataset)
