"""Run an exported ``model.onnx`` with ONNX Runtime: the reader's backend for installs without PyTorch.

Imports numpy and onnxruntime only (never torch), so ``pip install 'digitocr[runtime]'`` is enough to read
pictures with ``Recognizer(model_path="model.onnx", backend="onnx")``. Write the file with ``digitocr export``.
"""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path

import numpy as np

from digitocr.config import IMAGE_SIZE, LINE_HEIGHT, LINE_MODELS, ModelConfig
from digitocr.errors import ConfigError, ModelFileError


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities over the last axis (the classes), float32."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))  # minus the max: no overflow
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


def check_reads(reads_lines: bool, lines: bool) -> None:
    """ConfigError where a backend is asked for what its model does not give: digit classes of a line model
    (``probabilities``) or columns of a classifier (``columns``)."""
    if reads_lines and not lines:
        raise ConfigError("this model reads whole lines: ask it for columns(lines), not probabilities(images)")
    if lines and not reads_lines:
        raise ConfigError("this model classifies single digits: ask it for probabilities(images), not columns(lines)")


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
        self.model_config = _model_config(self.metadata)
        self.reads_lines = self.model_config is not None and self.model_config.name in LINE_MODELS

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        """A classifier: float32 (N, 1, 28, 28) or (N, 28, 28) in [0, 1] -> float32 logits (N, 10).
        A line model: (N, 1, 32, W) or (N, 32, W) -> float32 logits (N, W // 4, 11)."""
        batch = np.ascontiguousarray(pixels, dtype=np.float32)
        rows_and_columns = (LINE_HEIGHT, batch.shape[-1]) if self.reads_lines else (IMAGE_SIZE, IMAGE_SIZE)
        return self.session.run(None, {self.input_name: batch.reshape(-1, 1, *rows_and_columns)})[0]

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """float32 (N, 28, 28) in [0, 1] -> softmax probabilities (N, 10), as ``TorchBackend.probabilities``."""
        check_reads(self.reads_lines, lines=False)
        return softmax(self.logits(images))

    def columns(self, lines: np.ndarray) -> np.ndarray:
        """A line model's float32 lines (N, 32, W) in [0, 1] -> softmax probabilities (N, W // 4, 11) per column
        over the 10 digits and the CTC blank, as ``TorchBackend.columns``."""
        check_reads(self.reads_lines, lines=True)
        return softmax(self.logits(lines))


def _model_config(metadata: dict[str, str]) -> ModelConfig | None:
    """The architecture in the config `digitocr export` stored (fields this version does not know are left out);
    None for a graph without one."""
    try:
        stored = json.loads(metadata["digitocr_config"])["model"]
        known = {field.name for field in fields(ModelConfig)}
        return ModelConfig(
            **{key: tuple(value) if isinstance(value, list) else value for key, value in stored.items() if key in known}
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
