"""Which torch device a command runs on: one check for every command, so a wrong name or an absent GPU is one
clear line wherever it is given (train, evaluate, predict, serve)."""

from __future__ import annotations

import torch

from digitocr.config import DEVICE_NAMES, is_device_name
from digitocr.errors import ConfigError


def resolve_device(name: str | None = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; a name that is no device, or one that is absent, is a
    ConfigError (torch would raise a RuntimeError from deep inside the first call that uses it)."""
    name = name or "cpu"
    if not is_device_name(name):
        raise ConfigError(f"unknown device {name!r} ({DEVICE_NAMES})")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name} was asked for, but no CUDA GPU is available (try --device cpu)")
        if name != "cuda" and int(name[5:]) >= torch.cuda.device_count():
            raise ConfigError(
                f"device {name} was asked for, but this machine has {torch.cuda.device_count()} CUDA GPU(s)"
            )
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device mps was asked for, but Apple's MPS is not available (try --device cpu)")
    return torch.device(name)
