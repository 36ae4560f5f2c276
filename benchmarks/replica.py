"""Replicas of the anchors digitocr is measured against, each trained as its original trains it.

- ``train_replica``: the course notebook — per-sample ``ToTensor`` + ``Normalize`` + flatten through a
  ``DataLoader`` (batch 64), an MLP 784-128-64-10, Adam at 1e-3.
- ``train_pytorch_example``: PyTorch's examples/mnist CNN recipe — Conv32-Conv64-maxpool-dropout-FC128-dropout-FC10,
  Adadelta lr 1.0, StepLR gamma 0.7, batch 64.
Both read MNIST per sample through torchvision datasets (as the originals do) and evaluate on the test set after
every epoch, calling ``on_epoch(epoch, seconds, test_accuracy)`` with that epoch's training seconds (the
evaluation excluded). ``data_root`` is the folder holding ``MNIST/raw`` (``digitocr.data.ensure_mnist()``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

EpochHook = Callable[[int, float, float], None]  # (epoch, that epoch's training seconds, test accuracy)


def _loaders(data_root, transform, batch_size: int, limit: int | None, test_limit: int | None):
    """Shuffled training batches and test batches of 1,000; ``limit``/``test_limit`` keep only the first images."""
    from torchvision import datasets

    train = _first(datasets.MNIST(str(data_root), train=True, download=False, transform=transform), limit)
    test = _first(datasets.MNIST(str(data_root), train=False, download=False, transform=transform), test_limit)
    return (torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True),
            torch.utils.data.DataLoader(test, batch_size=1000))


def _first(dataset, limit: int | None):
    return torch.utils.data.Subset(dataset, range(min(limit, len(dataset)))) if limit else dataset


@torch.no_grad()
def _test_accuracy(model: nn.Module, loader) -> float:
    model.eval()
    correct = sum((model(images).argmax(1) == labels).sum().item() for images, labels in loader)
    model.train()
    return correct / len(loader.dataset)


def _train_epochs(model, loader, test_loader, optimizer, loss_fn, epochs, on_epoch, scheduler=None):
    results = []
    model.train()
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        for images, labels in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(images), labels)
            loss.backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        seconds = time.perf_counter() - started
        test_accuracy = _test_accuracy(model, test_loader)
        results.append((seconds, test_accuracy))
        if on_epoch is not None:
            on_epoch(epoch, seconds, test_accuracy)
    return results


def replica_model() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def train_replica(data_root, epochs: int = 5, on_epoch: EpochHook | None = None, limit: int | None = None,
                  test_limit: int | None = None) -> list[tuple[float, float]]:
    """The course notebook's training; per epoch (training seconds of that epoch, test accuracy).

    ``limit`` / ``test_limit`` use only the first images of the training / test set (quick runs).
    """
    from torchvision import transforms

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,)),
                                    transforms.Lambda(lambda x: x.view(-1))])
    loader, test_loader = _loaders(data_root, transform, 64, limit, test_limit)
    model = replica_model()
    return _train_epochs(model, loader, test_loader, torch.optim.Adam(model.parameters(), lr=1e-3),
                         nn.CrossEntropyLoss(), epochs, on_epoch)


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


def train_pytorch_example(data_root, epochs: int = 14, on_epoch: EpochHook | None = None, limit: int | None = None,
                          test_limit: int | None = None) -> list[tuple[float, float]]:
    """PyTorch's example recipe (its default is 14 epochs); per epoch (seconds, test accuracy)."""
    from torchvision import transforms

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    loader, test_loader = _loaders(data_root, transform, 64, limit, test_limit)
    model = PyTorchExampleNet()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    return _train_epochs(model, loader, test_loader, optimizer, F.nll_loss, epochs, on_epoch, scheduler)
