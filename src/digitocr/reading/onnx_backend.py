"""Run an exported ``model.onnx`` with ONNX Runtime: the reader's backend for installs without PyTorch.

Imports numpy and onnxruntime only (never torch), so ``pip install 'digitocr[runtime]'`` is enough to read
pictures with ``Recognizer(model_path="model.onnx", backend="onnx")``. Write the file with ``digitocr export``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from digitocr.config import IMAGE_SIZE
from digitocr.errors import ModelFileError


class OnnxBackend:
    """The same contract as the torch model: float32 pixels in [0, 1] -> logits, on the CPU."""

    def __init__(self, model_path: str | os.PathLike, threads: int | None = None):
        try:
            import onnxruntime
        except ImportError:
            raise ModelFileError("the ONNX backend needs onnxruntime: pip install 'digitocr[runtime]'") from None
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ModelFileError(
                f"ONNX model not found: {self.model_path} (write one with `digitocr export MODEL --format onnx`)"
            )
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(
                str(self.model_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own exception types for every kind of bad file
            raise ModelFileError(
                f"{self.model_path} is not a readable ONNX model ({type(error).__name__}); "
                f"export one with `digitocr export MODEL --format onnx`"
            ) from None
        self.input_name = self.session.get_inputs()[0].name
        # What `digitocr export` stored in the graph: config, accuracy, data hash (strings).
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        """float32 (N, 1, 28, 28) or (N, 28, 28) in [0, 1] -> float32 logits (N, 10)."""
        batch = np.ascontiguousarray(pixels, dtype=np.float32).reshape(-1, 1, IMAGE_SIZE, IMAGE_SIZE)
        return self.session.run(None, {self.input_name: batch})[0]

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """float32 (N, 28, 28) in [0, 1] -> softmax probabilities (N, 10), as ``TorchBackend.probabilities``."""
        logits = self.logits(images)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))  # minus the max: no overflow
        return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
