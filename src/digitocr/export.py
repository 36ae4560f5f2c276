"""Export a trained model for deployment: ONNX (for onnxruntime, no PyTorch needed) or a ``torch.export`` program.

Both take float32 pixels (N, 1, 28, 28) in [0, 1] with any batch size N and return logits (N, 10), the contract
of ``digitocr.load_model``. Each export writes ``MODEL_CARD.md`` beside the file: what the model is, what it
was trained on, how well it does per class, and what it is not for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from digitocr.config import CLASS_NAMES, IMAGE_SIZE
from digitocr.data.sources import Log, silent
from digitocr.errors import ConfigError
from digitocr.modelfile import ModelFile, read_model_file
from digitocr.models import architecture, count_parameters

FORMATS = {"onnx": ".onnx", "pt2": ".pt2"}  # format -> file suffix
FORMAT_NAMES = {"onnx": "an ONNX graph", "pt2": "a torch.export program"}
ONNX_OPSET = 18
MODEL_CARD_NAME = "MODEL_CARD.md"
INPUT_NAME, OUTPUT_NAME = "pixels", "logits"


@dataclass
class ExportResult:
    path: Path
    format: str
    model_card: Path
    metrics: dict  # test accuracy and per-class numbers, as in the model card

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "format": self.format,
            "model_card": str(self.model_card),
            "test_accuracy": self.metrics.get("test_accuracy"),
        }


def default_export_path(model_path: str | Path, format: str) -> Path:
    return Path(model_path).with_suffix(FORMATS[format])


def export_model(
    model_path: str | Path,
    format: str = "onnx",
    out: str | Path | None = None,
    data_dir: str | None = None,
    log: Log = silent,
) -> ExportResult:
    """Export the model file at ``model_path`` as ``format`` to ``out`` and write its model card beside it.

    Per-class test numbers come from the model file; an older file without them is evaluated on the MNIST
    test set here (``data_dir``).
    """
    if format not in FORMATS:
        raise ConfigError(f"unknown export format {format!r} ({', '.join(FORMATS)})")
    model_file = read_model_file(model_path)
    out = Path(out) if out else default_export_path(model_path, format)
    if out.parent != Path(""):
        out.parent.mkdir(parents=True, exist_ok=True)
    metrics = test_metrics(model_file, data_dir, log)
    if format == "onnx":
        export_onnx(model_file.model, out, metadata=onnx_metadata(model_file, metrics))
    else:
        export_pt2(model_file.model, out)
    card = write_model_card(out, model_file, metrics, format)
    return ExportResult(path=out, format=format, model_card=card, metrics=metrics)


def _example_and_dynamic_batch() -> tuple[tuple[torch.Tensor], dict]:
    # Batch 2, not 1: a size-1 example dimension is specialised to the constant 1 by torch.export.
    example = torch.rand(2, 1, IMAGE_SIZE, IMAGE_SIZE)
    return (example,), {"x": {0: torch.export.Dim("batch")}}


def export_onnx(model: torch.nn.Module, path: Path, metadata: dict[str, str] | None = None) -> Path:
    """The current (torch.export-based) ONNX exporter; the graph is checked with ``onnx.checker``."""
    import onnx

    example, dynamic_shapes = _example_and_dynamic_batch()
    program = torch.onnx.export(
        model.eval().cpu(),
        example,
        dynamo=True,
        dynamic_shapes=dynamic_shapes,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        opset_version=ONNX_OPSET,
        verbose=False,
    )  # verbose prints progress on stdout, which is for results
    program.save(str(path))
    graph = onnx.load(str(path))
    if metadata:
        onnx.helper.set_model_props(graph, metadata)
        onnx.save(graph, str(path))
    onnx.checker.check_model(graph, full_check=True)
    return path


def export_pt2(model: torch.nn.Module, path: Path) -> Path:
    """A ``torch.export`` program (``torch.export.load(path).module()`` runs it), not deprecated TorchScript."""
    example, dynamic_shapes = _example_and_dynamic_batch()
    program = torch.export.export(model.eval().cpu(), example, dynamic_shapes=dynamic_shapes)
    torch.export.save(program, str(path))
    return path


def test_metrics(model_file: ModelFile, data_dir: str | None = None, log: Log = silent) -> dict:
    """Test accuracy overall and per class: stored by training, else measured now on the MNIST test set."""
    stored = model_file.metadata.get("metrics") or {}
    if "test_accuracy" in stored and "per_class" in stored:
        return {"test_accuracy": stored["test_accuracy"], "per_class": stored["per_class"]}
    from digitocr.data import Split, read_mnist, to_float_images
    from digitocr.evaluation import evaluate

    log("the model file holds no per-class test numbers; evaluating on the MNIST test set")
    images, labels = read_mnist(data_dir, train=False, log=log)
    measured = evaluate(model_file.model, Split(to_float_images(images), labels))
    return {"test_accuracy": measured["test_accuracy"], "per_class": measured["per_class"]}


def onnx_metadata(model_file: ModelFile, metrics: dict) -> dict[str, str]:
    """Key-value strings stored in the ONNX file, readable by onnxruntime without the model card."""
    return {
        "digitocr_config": json.dumps(model_file.config.to_dict()),
        "class_names": json.dumps(list(CLASS_NAMES)),
        "test_accuracy": str(metrics["test_accuracy"]),
        "data_sha256": str(model_file.metadata.get("data_sha256")),
        "input": f"{INPUT_NAME}: float32 [N, 1, {IMAGE_SIZE}, {IMAGE_SIZE}] pixels in [0, 1], ink bright on dark",
        "output": f"{OUTPUT_NAME}: float32 [N, {len(CLASS_NAMES)}]",
    }


def write_model_card(exported: Path, model_file: ModelFile, metrics: dict, format: str) -> Path:
    path = exported.with_name(MODEL_CARD_NAME)
    path.write_text(model_card(exported, model_file, metrics, format))
    return path


def model_card(exported: Path, model_file: ModelFile, metrics: dict, format: str) -> str:
    config, metadata = model_file.config, model_file.metadata
    stored = metadata.get("metrics") or {}
    rows = "\n".join(
        f"| {name} | {row['precision']:.4f} | {row['recall']:.4f} | {row['f1']:.4f} | {row['support']} |"
        for name, row in metrics["per_class"].items()
    )
    settings = ", ".join(
        f"{name.replace('_', ' ')} {list(value) if isinstance(value, tuple) else value}"
        for name, value in architecture(config.model).items()
    )
    versions = ", ".join(f"{name} {version}" for name, version in (metadata.get("versions") or {}).items())
    return f"""# Model card: {exported.name}

A handwritten-digit classifier trained with digitocr, exported as {FORMAT_NAMES[format]} on {_today()}.

## Model
- Architecture: `{config.model.name}` — {settings}
- Parameters: {count_parameters(model_file.model):,}
- Input: float32 `[N, 1, {IMAGE_SIZE}, {IMAGE_SIZE}]` pixels in [0, 1], white digit on black, centred MNIST-style \
(the model standardises with the MNIST mean and std itself); any batch size N
- Output: float32 logits `[N, {len(CLASS_NAMES)}]` for the digits {", ".join(CLASS_NAMES)} \
(softmax gives probabilities)
- Exported by: `digitocr export` ({format}); trained with {versions or "unknown versions"}; \
created {metadata.get("created")}

```
{model_file.model}
```

## Data
- MNIST: 60,000 training images ({config.data.val_size:,} held out for validation / model selection), \
10,000 test images used once for the figures below
- SHA-256 of the raw training and test files: `{metadata.get("data_sha256")}`

## Training configuration
```json
{json.dumps(config.to_dict(), indent=2)}
```
Epochs run: {stored.get("epochs", "unknown")}; validation accuracy {_percent(stored.get("val_accuracy"))}.

## Test accuracy
Overall: **{_percent(metrics["test_accuracy"])}** on the 10,000 MNIST test images.

| digit | precision | recall | F1 | support |
|---|---|---|---|---|
{rows}

## Intended use
Reading single handwritten Western Arabic digits (0-9), not letters or words, after they have been cut out,
size-normalised and centred like MNIST (digitocr's reading pipeline does this for whole pictures). Fit for demos,
teaching and forms where digits are written one per box.

## Limits
- Digits only: letters, symbols and other numeral systems (Eastern Arabic, Devanagari, Chinese, ...) are
  forced into one of 0-9 with no "none of these" answer; a high confidence does not mean the input is a digit.
- Trained on MNIST (American writers, late 1980s, scanned forms): other handwriting styles, fonts, photos with
  shadows, thin or very thick strokes and unusual aspect ratios do worse than the test figure above.
- Touching or overlapping digits must be separated before classification.
- Not for decisions with legal, financial or safety consequences without a human check.
"""


def _percent(value) -> str:
    return "unknown" if value is None else f"{value:.2%}"


def _today() -> str:
    import datetime

    return datetime.date.today().isoformat()
