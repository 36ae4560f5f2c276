"""Export: ONNX and torch.export programs give the torch model's logits; the ONNX reader runs without torch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from digitocr.cli import main
from digitocr.config import TrainConfig
from digitocr.errors import ConfigError, ModelFileError
from digitocr.export import MODEL_CARD_NAME, export_model, model_card
from digitocr.modelfile import load_model, read_model_file, save_model
from digitocr.models import build_model
from digitocr.reading.onnx_backend import OnnxBackend

ONNX_LOGIT_TOLERANCE = 1e-4  # onnxruntime's kernels against torch's, float32 logits of size ~10

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


def test_export_command_prints_json(untrained_model_path, tmp_path, capsys):
    out = tmp_path / "deploy" / "digits.onnx"
    assert main(["export", str(untrained_model_path), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary == {
        "path": str(out),
        "format": "onnx",
        "model_card": str(out.with_name(MODEL_CARD_NAME)),
        "test_accuracy": 0.1,
    }
    assert main(["export", str(tmp_path / "missing.pth")]) == 1
    assert "model file not found" in capsys.readouterr().err


def _run_without_torch(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_onnx_backend_and_reading_package_import_without_torch(untrained_onnx):
    done = _run_without_torch(f"""
        import numpy as np
        import digitocr.reading
        from digitocr.reading.backends import make_backend
        backend = make_backend({str(untrained_onnx.path)!r}, backend="onnx")
        print(backend.probabilities(np.zeros((3, 28, 28), np.float32)).shape)
        assert not any(name.split(".")[0] == "torch" for name in sys.modules)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["(3,", "10)"]


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
