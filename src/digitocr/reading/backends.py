"""What turns normalised digit images or lines into class probabilities: PyTorch, or ONNX Runtime without torch.

Every backend has ``reads_lines`` (what its model reads) and, for a classifier, ``probabilities(images)``: float32
numpy (N, 28, 28) in [0, 1] -> float32 numpy (N, 10); for a line model, ``columns(lines)``: float32 numpy
(N, 32, W) in [0, 1] -> float32 numpy (N, W // 4, 11), per column the digits then the CTC blank.
The reading pipeline around it uses numpy and Pillow only, so the ONNX backend works where torch is absent.
"""

from __future__ import annotations

import os

import numpy as np

from digitocr.config import IMAGE_SIZE, LINE_HEIGHT
from digitocr.errors import ConfigError
from digitocr.reading.onnx_backend import OnnxBackend, check_reads


class TorchBackend:
    def __init__(self, model_path: str | os.PathLike, device: str | None = None):
        from digitocr.devices import resolve_device
        from digitocr.modelfile import read_model_file
        from digitocr.models import reads_lines

        self.device = resolve_device(device or "cpu")
        self.model_file = read_model_file(model_path, device=self.device)
        self.model = self.model_file.model
        self.metadata = self.model_file.metadata
        self.model_config = self.model_file.config.model
        self.reads_lines = reads_lines(self.model_config)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        check_reads(self.reads_lines, lines=False)
        return self._softmax(images, (IMAGE_SIZE, IMAGE_SIZE))

    def columns(self, lines: np.ndarray) -> np.ndarray:
        check_reads(self.reads_lines, lines=True)
        return self._softmax(lines, (LINE_HEIGHT, np.shape(lines)[-1]))

    def _softmax(self, pixels: np.ndarray, rows_and_columns: tuple[int, int]) -> np.ndarray:
        """The model's softmax over its classes (the last axis) for float32 pixels in [0, 1] of that size."""
        import torch

        batch = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).reshape(-1, 1, *rows_and_columns)
        with torch.inference_mode():
            return self.model(batch.to(self.device)).softmax(-1).float().cpu().numpy()


def make_backend(
    model_path: str | os.PathLike, device: str | None = None, backend: str = "torch", threads: int | None = None
):
    """The backend that runs ``model_path`` (see ``catalog.resolve_model`` for how a model argument picks one).

    ``threads``: onnxruntime's threads for this model (None: its default, every core); torch's are set for the
    whole process (``parallel.limit_threads``)."""
    if backend == "torch":
        return TorchBackend(model_path, device)
    if backend == "onnx":
        return OnnxBackend(model_path, threads=threads)
    raise ConfigError(f"unknown backend {backend!r} (torch, onnx)")
