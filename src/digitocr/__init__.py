"""digitocr: learn to read handwritten digits from MNIST, then read them in real pictures.

The public API is imported lazily, so ``import digitocr`` stays cheap and parts that need no PyTorch
(the ONNX reader) can be used without it.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {
    "TrainConfig": "digitocr.config",
    "ModelConfig": "digitocr.config",
    "DataConfig": "digitocr.config",
    "DigitOCRError": "digitocr.errors",
    "ensure_mnist": "digitocr.data",
    "load_mnist": "digitocr.data",
    "build_model": "digitocr.models",
    "MODELS": "digitocr.models",
    "fit": "digitocr.training",
    "evaluate": "digitocr.evaluation",
    "save_model": "digitocr.modelfile",
    "load_model": "digitocr.modelfile",
    "read_model_file": "digitocr.modelfile",
    "train": "digitocr.pipeline",
    "TrainResult": "digitocr.pipeline",
    "Recognizer": "digitocr.reading",
    "TuneConfig": "digitocr.config",
}

__all__ = [*_API, "__version__"]  # noqa: PLE0604  (the lazily imported names: strings, as keys)


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'digitocr' has no attribute {name!r}")
