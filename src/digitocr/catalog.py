"""The models that ship inside the package, by name: what `--model reader`, `digitocr models` and a reader made
with no model read with.

Each shipped model is a model file (``NAME.pth``), its ONNX copy (``NAME.onnx``, for installs without PyTorch),
a card (``NAME.json``: recipe, data hash, code version, file digests, measured figures) and the export's model
card for people (``NAME.MODEL_CARD.md``), all written by ``make reader`` (scripts/make_reader.py) and never edited
by hand. Imports neither torch nor onnxruntime.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from digitocr.config import LINE_MODELS
from digitocr.errors import ConfigError, ModelFileError

SHIPPED_DIR = Path(__file__).parent / "shipped"
DEFAULT_READER = "reader"  # what reads when no model is given: the digit classifier
LINE_READER = "lines"  # the line reader (CNN + CTC): touching digits and several lines, not yet as good elsewhere
BACKENDS = ("auto", "torch", "onnx")  # auto: see resolve_model


@dataclass(frozen=True)
class ShippedModel:
    name: str
    description: str

    @property
    def torch_path(self) -> Path:
        return SHIPPED_DIR / f"{self.name}.pth"

    @property
    def onnx_path(self) -> Path:
        return SHIPPED_DIR / f"{self.name}.onnx"

    @property
    def card_path(self) -> Path:
        return SHIPPED_DIR / f"{self.name}.json"

    @property
    def model_card_path(self) -> Path:
        return SHIPPED_DIR / f"{self.name}.MODEL_CARD.md"

    def card(self) -> dict:
        """The card ``make reader`` wrote: recipe, data and code versions, file digests, measured figures."""
        try:
            return json.loads(self.card_path.read_text())
        except FileNotFoundError:
            raise ModelFileError(
                f"the shipped model {self.name!r} is missing from {SHIPPED_DIR} (run `make reader`)"
            ) from None


CATALOG = {
    DEFAULT_READER: ShippedModel(
        DEFAULT_READER,
        "the best reader: the CNN reader preset (`digitocr train --model cnn --preset reader`), reads the digits "
        "cut from a number one by one",
    ),
    LINE_READER: ShippedModel(
        LINE_READER,
        "the line reader: CNN + CTC, reads each line of digits whole (`digitocr train --model line --preset reader`)",
    ),
}


def test_measure(kind: str) -> str:
    """What the test figure of a model of this kind (``ModelConfig.name``) counts, for cards and listings."""
    return "lines of MNIST test digits read exactly" if kind in LINE_MODELS else "MNIST test digits"


@dataclass(frozen=True)
class ModelSource:
    """What a model argument resolved to: the file to load, the backend that loads it, and a name to show."""

    path: Path
    backend: str  # torch | onnx
    label: str  # "reader (shipped)" or the path as given


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def resolve_model(model: str | os.PathLike | None = None, backend: str = "auto") -> ModelSource:
    """A model argument -> the file and backend to read with.

    None or a name in ``CATALOG`` ("reader", "lines"): that shipped model. ``auto`` reads its ONNX copy where
    onnxruntime is installed (the same probabilities within 1e-4, tested, and a fresh `digitocr predict` answers
    in a fraction of the time, with no torch to import), else its model file under torch. Anything else is a path (write
    ``./reader`` for a file of that name); ``auto`` reads ``.onnx`` files with onnxruntime and the rest with torch.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r} ({', '.join(BACKENDS)})")
    name = DEFAULT_READER if model is None else os.fspath(model)
    if name in CATALOG:
        shipped = CATALOG[name]
        chosen = ("onnx" if installed("onnxruntime") else "torch") if backend == "auto" else backend
        path = shipped.torch_path if chosen == "torch" else shipped.onnx_path
        return ModelSource(path, chosen, f"{name} (shipped)")
    path = Path(name)
    if backend == "auto":
        backend = "onnx" if path.suffix.lower() == ".onnx" else "torch"
    return ModelSource(path, backend, name)
