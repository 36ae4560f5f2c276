"""What turns normalised 28x28 digit images into class probabilities: PyTorch, or ONNX Runtime without torch.

Every backend has ``probabilities(images)``: float32 numpy (N, 28, 28) in [0, 1] -> float32 numpy (N, 10).
The reading pipeline around it uses numpy and Pillow only, so the ONNX backend works where torch is absent.
"""

from __future__ import annotations

import os

import numpy as np

from digitocr.config import IMAGE_SIZE
from digitocr.errors import ConfigError


class TorchBackend:
    def __init__(self, model_path: str | os.PathLike, device: str | None = None):
        from digitocr.devices import resolve_device
        from digitocr.modelfile import read_model_file

        self.device = resolve_device(device or "cpu")
        self.model_file = read_model_file(model_path, device=self.device)
        self.model = self.model_file.model
        self.metadata = self.model_file.metadata

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        import torch

        batch = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).reshape(-1, 1, IMAGE_SIZE, IMAGE_SIZE)
        with torch.inference_mode():
            return self.model(batch.to(self.device)).softmax(1).float().cpu().numpy()


def make_backend(
    model_path: str | os.PathLike, device: str | None = None, backend: str = "torch", threads: int | None = None
):
    """The backend that runs ``model_path`` (see ``catalog.resolve_model`` for how a model argument picks one).

    ``threads``: onnxruntime's threads for this model (None: its default, every core); torch's are set for the
    whole process (``parallel.limit_threads``)."""
    if backend == "torch":
        return TorchBackend(model_path, device)
    if backend == "onnx":
        from digitocr.reading.onnx_backend import OnnxBackend  # written with the export issue

        return OnnxBackend(model_path, threads=threads)
    raise ConfigError(f"unknown backend {backend!r} (torch, onnx)")
