"""``trained_model.pth``: weights + config + metadata in a plain dict, loaded with ``weights_only=True``.

Loading rebuilds the model from the stored config and never unpickles a module, so a hostile file cannot
run code. A digest of the weights, stored beside them, catches a file changed after it was written.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from digitocr.config import CLASS_NAMES, MNIST_MEAN, MNIST_STD, TrainConfig
from digitocr.errors import DigitOCRError, ModelFileError
from digitocr.models import build_model

MODEL_FORMAT = "digitocr-model"
MODEL_FORMAT_VERSION = 1


@dataclass
class ModelFile:
    model: nn.Module  # in eval mode
    config: TrainConfig
    metadata: dict  # metrics, data_sha256, versions, created, ...


def weights_digest(state_dict: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_model(path: str | Path, model: nn.Module, config: TrainConfig, metrics: dict | None = None,
               data_sha256: str | None = None, extra: dict | None = None) -> Path:
    """Write the model file atomically (temporary name, then rename) and return its path."""
    import torchvision

    from digitocr import __version__

    state_dict = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    payload = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "state_dict": state_dict,
        "weights_sha256": weights_digest(state_dict),
        "config": config.to_dict(),
        "normalization": {"mean": MNIST_MEAN, "std": MNIST_STD},
        "class_names": list(CLASS_NAMES),
        "metrics": metrics or {},
        "data_sha256": data_sha256,
        "versions": {"digitocr": __version__, "torch": str(torch.__version__), "torchvision": str(torchvision.__version__),
                     "python": platform.python_version()},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    path = Path(path)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(payload, temporary)
    os.replace(temporary, path)
    return path


def read_model_file(path: str | Path, device: str | torch.device = "cpu") -> ModelFile:
    """Load and check a model file; ModelFileError for anything that is not an intact digitocr model."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path} (train one with `digitocr train`)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        # weights_only refuses pickled code; a truncated zip fails here too. Either way: not usable.
        raise ModelFileError(f"{path} is not a readable digitocr model file "
                             f"(truncated, damaged or not made by digitocr: {type(error).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"{path} is not a digitocr model file")
    if payload.get("format_version") != MODEL_FORMAT_VERSION:
        raise ModelFileError(f"{path} has model format version {payload.get('format_version')}; "
                             f"this digitocr reads version {MODEL_FORMAT_VERSION}")
    state_dict = payload.get("state_dict")
    if not isinstance(state_dict, dict) or payload.get("weights_sha256") != weights_digest(state_dict):
        raise ModelFileError(f"{path} was changed after it was written (weights do not match their digest)")
    try:
        config = TrainConfig.from_dict(payload["config"])
        model = build_model(config.model)
        model.load_state_dict(state_dict)
    except (DigitOCRError, KeyError, RuntimeError, TypeError) as error:
        raise ModelFileError(f"{path} holds a model this digitocr cannot rebuild: {error}") from None
    model.to(device).eval()
    metadata = {key: value for key, value in payload.items() if key not in ("state_dict", "config")}
    return ModelFile(model=model, config=config, metadata=metadata)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """The model in eval mode: float (N, 1, 28, 28) pixels in [0, 1] -> logits (N, 10)."""
    return read_model_file(path, device).model
