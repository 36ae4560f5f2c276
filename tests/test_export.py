"""Export: ONNX and torch.export programs give the torch model's logits, for classifiers and line models at any
width; the ONNX reader runs without torch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from digitocr.cli import main
from digitocr.config import ModelConfig, TrainConfig
from digitocr.errors import ConfigError, ModelFileError
from digitocr.export import MODEL_CARD_NAME, export_model, model_card
from digitocr.modelfile import load_model, read_model_file, save_model
from digitocr.models import build_model
from digitocr.reading.backends import TorchBackend
from digitocr.reading.onnx_backend import OnnxBackend

ONNX_LOGIT_TOLERANCE = 1e-4  # onnxruntime's kernels against torch's, float32 logits of size ~10
# Widths of lines the ONNX graph of a line model is checked at: one column, short, long, no multiple of 4, very long.
LINE_WIDTHS = (4, 32, 100, 260, 262, 1000)

# Run in a subprocess: any `import torch` (or torchvision, ...) fails, as on a runtime-only install.
BLOCK_TORCH = """
import sys
class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: as if PyTorch were not installed)",
                                      name=name)
sys.meta_path.insert(0, BlockTorch())
"""


@pytest.fixture(scope="module")
def untrained_onnx(untrained_model_path):
    return export_model(untrained_model_path, "onnx")


@pytest.fixture(scope="module")
def untrained_line_onnx(untrained_line_model_path):
    return export_model(untrained_line_model_path, "onnx")


def test_onnx_matches_torch_for_any_batch_size(untrained_model_path, untrained_onnx):
    model = load_model(untrained_model_path)
    backend = OnnxBackend(untrained_onnx.path)
    for batch in (1, 2, 7, 300):
        pixels = torch.rand(batch, 1, 28, 28)
        with torch.no_grad():
            expected = model(pixels).numpy()
        assert np.abs(backend.logits(pixels.numpy()) - expected).max() <= 1e-4
    probabilities = backend.probabilities(np.random.default_rng(0).random((5, 28, 28), dtype=np.float32))
    assert probabilities.shape == (5, 10) and np.allclose(probabilities.sum(1), 1, atol=1e-5)
    assert TrainConfig.from_dict(json.loads(backend.metadata["digitocr_config"])) == TrainConfig()


def test_onnx_graph_has_a_dynamic_batch_and_passes_the_checker(untrained_onnx):
    import onnx

    graph = onnx.load(str(untrained_onnx.path))
    onnx.checker.check_model(graph, full_check=True)
    (pixels,), (logits,) = graph.graph.input, graph.graph.output
    batch = pixels.type.tensor_type.shape.dim[0]
    assert batch.dim_param and not batch.HasField("dim_value")  # a named symbol, not a fixed size
    assert [d.dim_value for d in pixels.type.tensor_type.shape.dim[1:]] == [1, 28, 28]
    assert logits.type.tensor_type.shape.dim[1].dim_value == 10


def test_model_card_is_written_beside_the_export(untrained_onnx, untrained_model_path):
    card = untrained_onnx.model_card
    assert card == untrained_onnx.path.with_name(MODEL_CARD_NAME)
    text = card.read_text()
    for needed in (
        "## Model",
        "Parameters: 203,530",
        "0" * 64,
        '"lr": 0.2',
        "## Test accuracy",
        "| 9 | 0.1000 |",
        "## Intended use",
        "## Limits",
        "not letters",
        "`mlp` — hidden [256], activation relu, dropout 0.0, batch norm False",
    ):
        assert needed in text, needed


def test_a_cnn_model_card_names_the_cnn_settings(tmp_path):
    from dataclasses import replace

    config = TrainConfig(model=replace(TrainConfig().model, name="cnn", channels=(8, 16)))
    path = save_model(tmp_path / "cnn.pth", build_model(config.model), config)
    text = model_card(tmp_path / "cnn.onnx", read_model_file(path), {"test_accuracy": 0.1, "per_class": {}}, "onnx")
    assert "`cnn` — channels [8, 16], activation relu, dropout 0.0" in text
    assert "hidden" not in text.split("## Data")[0]


def test_pt2_round_trip(untrained_model_path, tmp_path):
    result = export_model(untrained_model_path, "pt2", out=tmp_path / "model.pt2")
    program = torch.export.load(str(result.path)).module()
    model = load_model(untrained_model_path)
    for batch in (1, 5):
        pixels = torch.rand(batch, 1, 28, 28)
        with torch.no_grad():
            # The exported graph may decompose ops into other kernels than eager mode: equal up to float32 rounding.
            torch.testing.assert_close(program(pixels), model(pixels), rtol=1e-5, atol=1e-5)
    assert (tmp_path / MODEL_CARD_NAME).is_file()


def test_export_errors(untrained_model_path, tmp_path):
    with pytest.raises(ConfigError, match="unknown export format"):
        export_model(untrained_model_path, "torchscript")
    with pytest.raises(ModelFileError, match="not found"):
        OnnxBackend(tmp_path / "missing.onnx")
    with pytest.raises(ModelFileError, match="not a readable ONNX model"):
        OnnxBackend(untrained_model_path)  # a .pth is not ONNX


@pytest.mark.parametrize(
    "model, accuracy, lines", [("untrained_model_path", 0.1, False), ("untrained_line_model_path", 0.25, True)]
)
def test_export_command_prints_json(model, accuracy, lines, request, tmp_path, capsys):
    out = tmp_path / "deploy" / "digits.onnx"
    assert main(["export", str(request.getfixturevalue(model)), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary == {
        "path": str(out),
        "format": "onnx",
        "model_card": str(out.with_name(MODEL_CARD_NAME)),
        "test_accuracy": accuracy,
        "reads_lines": lines,
    }
    assert OnnxBackend(out).reads_lines == lines
    assert main(["export", str(tmp_path / "missing.pth")]) == 1
    assert "model file not found" in capsys.readouterr().err


# --- line models: a dynamic width as well as a dynamic batch ------------------------------------------------------


def _same_best_path(logits: np.ndarray, expected: np.ndarray) -> None:
    """The same best class in every column whose two best logits are further apart than the runtimes may differ
    (a closer pair is a tie within rounding, which either runtime may break its own way), and few such ties."""
    top_two = np.sort(expected, axis=-1)[..., -2:]
    decided = top_two[..., 1] - top_two[..., 0] > 2 * ONNX_LOGIT_TOLERANCE
    assert decided.mean() > 0.99
    assert np.array_equal(logits.argmax(-1)[decided], expected.argmax(-1)[decided])


def test_line_onnx_matches_torch_at_any_width_and_batch_size(untrained_line_model_path, untrained_line_onnx):
    model = load_model(untrained_line_model_path)
    backend = OnnxBackend(untrained_line_onnx.path)
    torch.manual_seed(0)
    for width in LINE_WIDTHS:
        for batch in (1, 3):
            lines = torch.rand(batch, 1, 32, width)
            with torch.no_grad():
                expected = model(lines).numpy()
            logits = backend.logits(lines.numpy())
            assert logits.shape == expected.shape == (batch, width // 4, 11), (width, batch)
            assert np.abs(logits - expected).max() <= ONNX_LOGIT_TOLERANCE, (width, batch)
            _same_best_path(logits, expected)


def test_line_onnx_graph_has_a_dynamic_batch_and_width_and_says_it_reads_lines(untrained_line_onnx):
    import onnx

    graph = onnx.load(str(untrained_line_onnx.path))
    onnx.checker.check_model(graph, full_check=True)
    (pixels,), (logits,) = graph.graph.input, graph.graph.output
    batch, channels, rows, width = pixels.type.tensor_type.shape.dim
    assert batch.dim_param and width.dim_param and batch.dim_param != width.dim_param  # two free sizes
    assert (channels.dim_value, rows.dim_value) == (1, 32)
    out_batch, columns, classes = logits.type.tensor_type.shape.dim
    assert out_batch.dim_param == batch.dim_param and columns.dim_param and classes.dim_value == 11
    metadata = {prop.key: prop.value for prop in graph.metadata_props}
    assert TrainConfig.from_dict(json.loads(metadata["digitocr_config"])).model.name == "line"
    assert metadata["test_accuracy"] == "0.25" and metadata["test_measure"].startswith("exact-string accuracy")
    assert "[N, 1, 32, W]" in metadata["input"] and "[N, W // 4, 11]" in metadata["output"]


def test_onnx_and_torch_backends_give_the_same_columns(untrained_line_model_path, untrained_line_onnx):
    by_torch, by_onnx = TorchBackend(untrained_line_model_path), OnnxBackend(untrained_line_onnx.path)
    assert by_torch.reads_lines and by_onnx.reads_lines
    rng = np.random.default_rng(0)
    for width, batch in ((32, 1), (100, 3), (260, 3)):
        lines = rng.random((batch, 32, width), dtype=np.float32)
        expected, columns = by_torch.columns(lines), by_onnx.columns(lines)
        assert columns.shape == expected.shape == (batch, width // 4, 11)
        assert columns.dtype == expected.dtype == np.float32
        assert np.allclose(columns.sum(-1), 1, atol=1e-5) and columns.min() >= 0
        assert np.abs(columns - expected).max() <= ONNX_LOGIT_TOLERANCE
    for backend in (by_torch, by_onnx):  # a line model has no digit classes to give for a 28x28 image
        with pytest.raises(ConfigError, match="reads whole lines"):
            backend.probabilities(np.zeros((2, 28, 28), np.float32))


def test_classifier_backends_give_no_columns(untrained_model_path, untrained_onnx):
    for backend in (TorchBackend(untrained_model_path), OnnxBackend(untrained_onnx.path)):
        assert not backend.reads_lines
        with pytest.raises(ConfigError, match="classifies single digits"):
            backend.columns(np.zeros((1, 32, 64), np.float32))


def test_a_line_model_card_describes_a_line_reader(untrained_line_onnx):
    assert untrained_line_onnx.metrics == {"test_accuracy": 0.25, "per_class": None}
    text = untrained_line_onnx.model_card.read_text()
    for needed in (
        "one line of digits at a time",
        "`line` — channels [16, 32, 64, 96], context [128, 128], activation relu, dropout 0.0",
        "float32 `[N, 1, 32, W]`",
        "float32 logits `[N, W // 4, 11]`",
        "CTC blank (index 10)",
        "Exact-string accuracy: **25.00%** on 5,000 lines made from the MNIST test digits",
        "1" * 64,
        "## Intended use",
        "up to 12 digits",
    ):
        assert needed in text, needed
    assert "| digit | precision" not in text and "28, 28" not in text


def test_line_pt2_round_trip(untrained_line_model_path, tmp_path):
    result = export_model(untrained_line_model_path, "pt2", out=tmp_path / "line.pt2")
    program = torch.export.load(str(result.path)).module()
    model = load_model(untrained_line_model_path)
    for width, batch in ((8, 1), (32, 1), (100, 3), (262, 3)):  # from two columns (MIN_LINE_WIDTH["pt2"])
        lines = torch.rand(batch, 1, 32, width)
        with torch.no_grad():
            torch.testing.assert_close(program(lines), model(lines), rtol=1e-5, atol=1e-5)
    assert "any width W of 8 pixels or more" in result.model_card.read_text()


def test_a_line_model_without_a_test_figure_is_exported_unmeasured(tmp_path, capsys):
    """Its figure is measured on lines, by training: export neither evaluates it on 28x28 MNIST nor fetches it."""
    config = TrainConfig(model=ModelConfig(name="line", channels=(8, 16)))
    path = save_model(tmp_path / "line.pth", build_model(config.model).eval(), config)
    no_data = tmp_path / "no-mnist-here"
    assert main(["export", str(path), "--data-dir", str(no_data)]) == 0
    assert "(no test figure in the model file)" in capsys.readouterr().out
    assert "Unknown: this model file holds no test figure" in (tmp_path / MODEL_CARD_NAME).read_text()
    assert not no_data.exists()
    assert "test_accuracy" not in OnnxBackend(tmp_path / "line.onnx").metadata


def _run_without_torch(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_onnx_backend_and_reading_package_import_without_torch(untrained_onnx, untrained_line_onnx):
    done = _run_without_torch(f"""
        import numpy as np
        import digitocr.reading
        from digitocr.reading.backends import make_backend
        backend = make_backend({str(untrained_onnx.path)!r}, backend="onnx")
        print(backend.reads_lines, backend.probabilities(np.zeros((3, 28, 28), np.float32)).shape)
        lines = make_backend({str(untrained_line_onnx.path)!r}, backend="onnx")
        print(lines.reads_lines, lines.columns(np.zeros((2, 32, 100), np.float32)).shape)
        assert not any(name.split(".")[0] == "torch" for name in sys.modules)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "(3,", "10)", "True", "(2,", "25,", "11)"]


def test_commands_that_need_torch_say_which_extra_to_install(tmp_path):
    done = _run_without_torch("""
        from digitocr.cli import main
        raise SystemExit(main(["train", "--epochs", "1"]))
    """)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "digitocr: error: `digitocr train` needs torch, which is not installed (pip install 'digitocr[train]')"
    )


@pytest.mark.slow
def test_onnx_equals_torch_on_the_whole_mnist_test_set(trained_model_path, tmp_path):
    from digitocr.data import read_mnist, to_float_images

    result = export_model(trained_model_path, "onnx", out=tmp_path / "model.onnx")
    images, labels = read_mnist(train=False)
    pixels = to_float_images(images)
    with torch.no_grad():
        expected = load_model(trained_model_path)(pixels).numpy()
    logits = OnnxBackend(result.path).logits(pixels.numpy())
    assert logits.shape == (10000, 10)
    assert np.abs(logits - expected).max() <= ONNX_LOGIT_TOLERANCE
    # The same answer on every image whose two best logits are further apart than the two runtimes may differ:
    # a closer pair is a tie within rounding, which either runtime may break its own way on another CPU.
    top_two = np.sort(expected, axis=1)[:, -2:]
    decided = top_two[:, 1] - top_two[:, 0] > 2 * ONNX_LOGIT_TOLERANCE
    assert decided.mean() > 0.99
    assert np.array_equal(logits.argmax(1)[decided], expected.argmax(1)[decided])
    card = result.model_card.read_text()
    assert f"Overall: **{(expected.argmax(1) == labels.numpy()).mean():.2%}**" in card


@pytest.mark.slow
def test_recognizer_reads_a_picture_with_onnx_and_no_torch(trained_model_path, tmp_path):
    from PIL import Image

    from digitocr.data import read_mnist

    onnx_path = export_model(trained_model_path, "onnx", out=tmp_path / "model.onnx").path
    images, labels = read_mnist(train=False)
    # A white page with a dark digit, as a user would photograph it: MNIST test image 0, inverted and enlarged.
    picture = Image.fromarray(255 - images[0].numpy()).resize((112, 112))
    picture.save(tmp_path / "digit.png")
    done = _run_without_torch(f"""
        import json
        from digitocr.reading import Recognizer
        reader = Recognizer(model_path={str(onnx_path)!r}, backend="onnx")
        print(json.dumps(reader.read({str(tmp_path / "digit.png")!r}).to_dict()))
        assert not any(name.split(".")[0] == "torch" for name in sys.modules)
    """)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["text"] == str(int(labels[0]))
