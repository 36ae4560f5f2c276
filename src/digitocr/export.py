"""Export a trained model for deployment: ONNX (for onnxruntime, no PyTorch needed) or a ``torch.export`` program.

Both keep the contract of ``digitocr.load_model`` with any batch size N: a classifier takes float32 pixels
(N, 1, 28, 28) in [0, 1] and returns logits (N, 10); a line model takes lines (N, 1, 32, W) of any width W (from
``MIN_LINE_WIDTH``) and returns logits per column (N, W // 4, 11). Each export writes ``MODEL_CARD.md`` beside the
file: what the model is, what it was trained on, how well it does, and what it is not for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from digitocr.config import BLANK, CLASS_NAMES, IMAGE_SIZE, LINE_HEIGHT, LINE_INK_HEIGHT, LINE_STRIDE, TrainConfig
from digitocr.data.sources import Log, silent
from digitocr.errors import ConfigError
from digitocr.modelfile import ModelFile, read_model_file
from digitocr.models import architecture, count_parameters, example_input, reads_lines

FORMATS = {"onnx": ".onnx", "pt2": ".pt2"}  # format -> file suffix
FORMAT_NAMES = {"onnx": "an ONNX graph", "pt2": "a torch.export program"}
ONNX_OPSET = 18
MODEL_CARD_NAME = "MODEL_CARD.md"
INPUT_NAME, OUTPUT_NAME = "pixels", "logits"
# The narrowest line (pixels) each format's program of a line model takes. Under LINE_STRIDE there is no column to
# give. torch.export's max-pool adds a guard against a single output column (a size-1 dimension makes its
# contiguity check ambiguous), so a pt2 program starts at two; ONNX keeps no such guard, and onnxruntime gives the
# eager model's logits for one column too (tests/test_export.py).
MIN_LINE_WIDTH = {"onnx": LINE_STRIDE, "pt2": 2 * LINE_STRIDE}


@dataclass
class ExportResult:
    path: Path
    format: str
    model_card: Path
    metrics: dict  # test accuracy (None: unknown) and per-class numbers (None for a line model without them)
    reads_lines: bool  # a line model: its accuracy is exact-string accuracy on lines

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "format": self.format,
            "model_card": str(self.model_card),
            "test_accuracy": self.metrics.get("test_accuracy"),
            "reads_lines": self.reads_lines,
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

    Test numbers come from the model file; a classifier's older file without them is evaluated on the MNIST
    test set here (``data_dir``).
    """
    if format not in FORMATS:
        raise ConfigError(f"unknown export format {format!r} ({', '.join(FORMATS)})")
    model_file = read_model_file(model_path)
    out = Path(out) if out else default_export_path(model_path, format)
    if out.parent != Path(""):
        out.parent.mkdir(parents=True, exist_ok=True)
    metrics = test_metrics(model_file, data_dir, log)
    lines = reads_lines(model_file.config.model)
    if format == "onnx":
        export_onnx(model_file.model, out, metadata=onnx_metadata(model_file, metrics), lines=lines)
    else:
        export_pt2(model_file.model, out, lines=lines)
    card = write_model_card(out, model_file, metrics, format)
    return ExportResult(path=out, format=format, model_card=card, metrics=metrics, reads_lines=lines)


def _example_and_dynamic_shapes(lines: bool, format: str) -> tuple[tuple[torch.Tensor], dict]:
    """A traced example and its free dimensions: the batch, and for a line model the width too."""
    # Batch 2, not 1: a size-1 example dimension is specialised to the constant 1 by torch.export.
    example = example_input(lines, batch=2)
    dims = {0: torch.export.Dim("batch")}
    if lines:
        # Any width from MIN_LINE_WIDTH up: pooling floors, so a width that is no multiple of LINE_STRIDE works too
        # (its last part-column is dropped, as in eager mode).
        dims[3] = torch.export.Dim("width", min=MIN_LINE_WIDTH[format])
    return (example,), {"x": dims}


def export_onnx(
    model: torch.nn.Module, path: Path, metadata: dict[str, str] | None = None, lines: bool = False
) -> Path:
    """The current (torch.export-based) ONNX exporter; the graph is checked with ``onnx.checker``.

    ``lines``: the model reads lines (``models.reads_lines``), so its input's width is free as well as its batch.
    """
    import onnx

    example, dynamic_shapes = _example_and_dynamic_shapes(lines, "onnx")
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


def export_pt2(model: torch.nn.Module, path: Path, lines: bool = False) -> Path:
    """A ``torch.export`` program (``torch.export.load(path).module()`` runs it), not deprecated TorchScript."""
    example, dynamic_shapes = _example_and_dynamic_shapes(lines, "pt2")
    program = torch.export.export(model.eval().cpu(), example, dynamic_shapes=dynamic_shapes)
    torch.export.save(program, str(path))
    return path


def test_metrics(model_file: ModelFile, data_dir: str | None = None, log: Log = silent) -> dict:
    """Test accuracy overall and per class: stored by training, else, for a classifier, measured now on the MNIST
    test set. A line model's figure (exact-string accuracy on lines) is only ever the stored one: 28x28 images
    are not what it reads; without one, ``test_accuracy`` is None and the card says so."""
    stored = model_file.metadata.get("metrics") or {}
    if reads_lines(model_file.config.model):
        if "test_accuracy" not in stored:
            log("the model file holds no test figure for this line model; the model card says so")
        return {"test_accuracy": stored.get("test_accuracy"), "per_class": stored.get("per_class")}
    if "test_accuracy" in stored and "per_class" in stored:
        return {"test_accuracy": stored["test_accuracy"], "per_class": stored["per_class"]}
    from digitocr.data import Split, read_mnist, to_float_images
    from digitocr.evaluation import evaluate

    log("the model file holds no per-class test numbers; evaluating on the MNIST test set")
    images, labels = read_mnist(data_dir, train=False, log=log)
    measured = evaluate(model_file.model, Split(to_float_images(images), labels))
    return {"test_accuracy": measured["test_accuracy"], "per_class": measured["per_class"]}


def onnx_metadata(model_file: ModelFile, metrics: dict) -> dict[str, str]:
    """Key-value strings stored in the ONNX file, readable by onnxruntime without the model card. The config's
    model name tells a line model (``config.LINE_MODELS``) from a classifier; input and output say it in words."""
    metadata = {
        "digitocr_config": json.dumps(model_file.config.to_dict()),
        "class_names": json.dumps(list(CLASS_NAMES)),
        "data_sha256": str(model_file.metadata.get("data_sha256")),
    }
    if metrics["test_accuracy"] is not None:  # absent rather than "None" where the model file holds no figure
        metadata["test_accuracy"] = str(metrics["test_accuracy"])
    if reads_lines(model_file.config.model):
        return metadata | {
            "test_measure": "exact-string accuracy on lines of MNIST test digits",
            "input": f"{INPUT_NAME}: float32 [N, 1, {LINE_HEIGHT}, W] a line of digits in [0, 1], ink bright on "
            f"dark, any width W >= {MIN_LINE_WIDTH['onnx']}",
            "output": f"{OUTPUT_NAME}: float32 [N, W // {LINE_STRIDE}, {BLANK + 1}] per column: the digits, then "
            f"the CTC blank",
        }
    return metadata | {
        "test_measure": "accuracy on the MNIST test images",
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
    kind = _line_card(config, metrics, format) if reads_lines(config.model) else _classifier_card(config, metrics)
    settings = ", ".join(
        f"{name.replace('_', ' ')} {list(value) if isinstance(value, tuple) else value}"
        for name, value in architecture(config.model).items()
    )
    versions = ", ".join(f"{name} {version}" for name, version in (metadata.get("versions") or {}).items())
    return f"""# Model card: {exported.name}

{kind.summary} trained with digitocr, exported as {FORMAT_NAMES[format]} on {_today()}.

## Model
- Architecture: `{config.model.name}` — {settings}
- Parameters: {count_parameters(model_file.model):,}
- Input: {kind.input}
- Output: {kind.output}
- Exported by: `digitocr export` ({format}); trained with {versions or "unknown versions"}; \
created {metadata.get("created")}

```
{model_file.model}
```

## Data
{kind.data}
- SHA-256 of the raw training and test files: `{metadata.get("data_sha256")}`

## Training configuration
```json
{json.dumps(config.to_dict(), indent=2)}
```
Epochs run: {stored.get("epochs", "unknown")}; validation accuracy {_percent(stored.get("val_accuracy"))}.

## Test accuracy
{kind.accuracy}
{_per_class_table(metrics.get("per_class"))}
## Intended use
{kind.use}

## Limits
{kind.limits}
- Not for decisions with legal, financial or safety consequences without a human check.
"""


@dataclass
class _CardText:
    """The parts of a model card that differ between a classifier of single digits and a line model."""

    summary: str
    input: str
    output: str
    data: str
    accuracy: str
    use: str
    limits: str


# The texts of a card's use and limits, as markdown lines (the numbers filled in by ``_classifier_card`` and
# ``_line_card``).
CLASSIFIER_USE = """\
Reading single handwritten Western Arabic digits (0-9), not letters or words, after they have been cut out,
size-normalised and centred like MNIST (digitocr's reading pipeline does this for whole pictures). Fit for demos,
teaching and forms where digits are written one per box."""
CLASSIFIER_LIMITS = """\
- Digits only: letters, symbols and other numeral systems (Eastern Arabic, Devanagari, Chinese, ...) are
  forced into one of 0-9 with no "none of these" answer; a high confidence does not mean the input is a digit.
- Trained on MNIST (American writers, late 1980s, scanned forms): other handwriting styles, fonts, photos with
  shadows, thin or very thick strokes and unusual aspect ratios do worse than the test figure above.
- Touching or overlapping digits must be separated before classification."""
LINE_USE = """\
Reading handwritten numbers written on one line (amounts, codes, form fields; digits may touch or overlap)
once the line has been found, cropped and scaled to the input height (digitocr's reading pipeline does this for
whole pictures). A picture of several lines is read one line at a time."""
LINE_LIMITS = """\
- Digits only: letters, symbols and other numeral systems are read as digits or dropped as blanks; there is
  no "this is not a number" answer, and a high confidence does not mean the input holds digits.
- Trained on lines built from MNIST digits (American writers, late 1980s, scanned forms): other handwriting
  styles, fonts and photos do worse than the test figure above.
- Numbers of up to {max_digits} digits: longer lines were never seen in training."""


def _classifier_card(config: TrainConfig, metrics: dict) -> _CardText:
    return _CardText(
        summary="A handwritten-digit classifier",
        input=f"float32 `[N, 1, {IMAGE_SIZE}, {IMAGE_SIZE}]` pixels in [0, 1], white digit on black, centred "
        "MNIST-style (the model standardises with the MNIST mean and std itself); any batch size N",
        output=f"float32 logits `[N, {len(CLASS_NAMES)}]` for the digits {', '.join(CLASS_NAMES)} "
        "(softmax gives probabilities)",
        data=f"- MNIST: 60,000 training images ({config.data.val_size:,} held out for validation / model "
        "selection), 10,000 test images used once for the figures below",
        accuracy=f"Overall: **{_percent(metrics['test_accuracy'])}** on the 10,000 MNIST test images.",
        use=CLASSIFIER_USE,
        limits=CLASSIFIER_LIMITS,
    )


def _line_card(config: TrainConfig, metrics: dict, format: str) -> _CardText:
    lines = config.lines
    if metrics["test_accuracy"] is None:
        accuracy = (
            "Unknown: this model file holds no test figure. A line model is measured on lines of digits, not on "
            "28x28 images, so export does not measure it."
        )
    else:
        accuracy = (
            f"Exact-string accuracy: **{_percent(metrics['test_accuracy'])}** on {lines.test_lines:,} lines made "
            "from the MNIST test digits (a line counts only when its whole number is read: no digit missing, wrong "
            "or added)."
        )
    return _CardText(
        summary="A reader of handwritten numbers, one line of digits at a time without cutting it (CNN + CTC),",
        input=f"float32 `[N, 1, {LINE_HEIGHT}, W]`: one line of digits in [0, 1], white on black, scaled so that "
        f"its tallest ink fills {LINE_INK_HEIGHT} of the {LINE_HEIGHT} rows (the model standardises with the MNIST "
        f"mean and std itself); any width W of {MIN_LINE_WIDTH[format]} pixels or more (digitocr's reader "
        f"passes a multiple of {LINE_STRIDE}) and any batch size N",
        output=f"float32 logits `[N, W // {LINE_STRIDE}, {BLANK + 1}]`: one column per {LINE_STRIDE} input "
        f"pixels, with the scores of the digits {', '.join(CLASS_NAMES)} and then of the CTC blank (index "
        f"{BLANK}); softmax over the last axis gives probabilities, and the best class of each column, repeats "
        "merged and blanks dropped, is the number read (greedy CTC decoding)",
        data=f"- Lines of {lines.min_digits} to {lines.max_digits} digits made on the fly from MNIST digits: "
        f"{lines.lines_per_epoch:,} training lines per epoch from the 60,000 training images but the "
        f"{config.data.val_size:,} held out, whose {lines.val_lines:,} validation lines pick the epoch; "
        f"{lines.test_lines:,} test lines from the 10,000 test images, used once for the figure below",
        accuracy=accuracy,
        use=LINE_USE,
        limits=LINE_LIMITS.format(max_digits=lines.max_digits),
    )


def _per_class_table(per_class: dict | None) -> str:
    """The table of precision, recall and F1 per digit, or nothing where the model file holds none."""
    if not per_class:
        return ""
    rows = "\n".join(
        f"| {name} | {row['precision']:.4f} | {row['recall']:.4f} | {row['f1']:.4f} | {row['support']} |"
        for name, row in per_class.items()
    )
    return f"""
| digit | precision | recall | F1 | support |
|---|---|---|---|---|
{rows}
"""


def _percent(value) -> str:
    return "unknown" if value is None else f"{value:.2%}"


def _today() -> str:
    import datetime

    return datetime.date.today().isoformat()
