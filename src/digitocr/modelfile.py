"""``trained_model.pth``: weights + config + metadata in a plain dict, loaded with ``weights_only=True``.

Loading rebuilds the model from the stored config and never unpickles a module, so a hostile file cannot
run code. A digest of everything the file holds (weights, config, normalisation, class names, metrics, ...),
stored beside it, catches a file changed after it was written.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from digitocr.config import CLASS_NAMES, MNIST_MEAN, MNIST_STD, TrainConfig
from digitocr.errors import DigitOCRError, ModelFileError
from digitocr.files import write_atomically
from digitocr.models import build_model

MODEL_FORMAT = "digitocr-model"
# 2: the digest covers every field, not only the weights (a version-1 file's config could be changed unseen).
MODEL_FORMAT_VERSION = 2
CONTENT_DIGEST = "content_sha256"  # the key of the whole file's digest


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


def content_digest(payload: dict) -> str:
    """SHA-256 of everything in a model file but this digest: the weights by their digest, every other field as
    canonical JSON. What decides what the model computes (config, normalisation) and what it claims (class
    names, metrics, data hash) is covered, so changing any of it is caught like a changed weight."""
    # The weights enter by their own digest, which the reader checks against them first.
    fields = {key: value for key, value in payload.items() if key not in ("state_dict", CONTENT_DIGEST)}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def writable_model_path(path: str | Path) -> Path:
    """``path`` made absolute, once it is sure that a model file can be written there (its folder made if
    missing): checked before training, so that a typo or a read-only folder does not cost a trained model."""
    path = Path(path).expanduser().absolute()
    try:  # is_dir and exists raise too where a folder on the way may not be looked into
        if path.is_dir():
            raise ModelFileError(f"the model path {path} is a folder; give a file path such as {path / 'model.pth'}")
        existing = next(folder for folder in path.parents if folder.exists())
        if not existing.is_dir():
            raise ModelFileError(f"cannot write the model file {path}: {existing} is a file, not a folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.probe-"):
            pass
    except OSError as error:
        raise ModelFileError(f"cannot write the model file {path}: {error.strerror or error}") from None
    return path


def save_model(
    path: str | Path,
    model: nn.Module,
    config: TrainConfig,
    metrics: dict | None = None,
    data_sha256: str | None = None,
    extra: dict | None = None,
) -> Path:
    """Write the model file atomically (temporary name, then rename) and return its path."""
    from importlib.metadata import PackageNotFoundError, version

    from digitocr import __version__

    try:  # its version only: importing torchvision costs about a second
        torchvision_version = version("torchvision")
    except PackageNotFoundError:
        torchvision_version = None

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
        "versions": {
            "digitocr": __version__,
            "torch": str(torch.__version__),
            "torchvision": torchvision_version,
            "python": platform.python_version(),
        },
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    payload[CONTENT_DIGEST] = content_digest(payload)
    path = Path(path)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(path, lambda temporary: torch.save(payload, temporary))


def read_model_file(path: str | Path, device: str | torch.device = "cpu") -> ModelFile:
    """Load and check a model file; ModelFileError for anything that is not an intact digitocr model."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path} (train one with `digitocr train`)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        # weights_only refuses pickled code; a truncated zip fails here too. Either way: not usable.
        raise ModelFileError(
            f"{path} is not a readable digitocr model file "
            f"(truncated, damaged or not made by digitocr: {type(error).__name__})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"{path} is not a digitocr model file")
    if payload.get("format_version") != MODEL_FORMAT_VERSION:
        raise ModelFileError(
            f"{path} has model format version {payload.get('format_version')}; "
            f"this digitocr reads version {MODEL_FORMAT_VERSION} (train it again with `digitocr train`)"
        )
    state_dict = payload.get("state_dict")
    if not isinstance(state_dict, dict) or payload.get("weights_sha256") != weights_digest(state_dict):
        raise ModelFileError(f"{path} was changed after it was written (weights do not match their digest)")
    try:
        intact = payload.get(CONTENT_DIGEST) == content_digest(payload)
    except (TypeError, ValueError):  # a field JSON cannot hold was put in after saving
        intact = False
    if not intact:
        raise ModelFileError(
            f"{path} was changed after it was written (its settings or metadata do not match their digest)"
        )
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
    """The model in eval mode: a classifier maps float (N, 1, 28, 28) pixels in [0, 1] to logits (N, 10), a line
    model (``models.reads_lines``) float (N, 1, 32, W) lines to logits per column (N, W // 4, 11)."""
    return read_model_file(path, device).model
