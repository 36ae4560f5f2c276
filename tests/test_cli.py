"""The `digitocr` command as a user runs it: real processes, real MNIST for the end-to-end run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

DIGITOCR = [sys.executable, "-m", "digitocr"]


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*DIGITOCR, *args], capture_output=True, text=True, cwd=cwd, timeout=600, env={**os.environ, **(env or {})}
    )


def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("data", "train", "evaluate"):
        assert command in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (("evaluate", "no-such-model.pth"), "model file not found: no-such-model.pth"),
        (("train", "--config", "no-such-config.json"), "config file not found"),
        (("train", "--epochs", "zero"), "expected a whole number"),
        (("train", "--lr", "-1"), "expected a positive number"),
        (("train", "--hidden", "512,x"), "comma-separated whole numbers"),
        (("train", "--device", "tpu"), "unknown device"),
        (("train", "--resume", "no-such.ckpt"), "checkpoint not found"),
        (("serve", "--port", "99999"), "a port number in 1-65535"),
        (("predict", ".", "--model", "no-such-model.pth"), "model file not found"),
    ],
)
def test_user_mistakes_get_one_clear_line_and_no_traceback(args, message, tmp_path):
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (("predict", "PICTURE", "--device", "cuda"), "no CUDA GPU is available"),
        (("predict", "PICTURE", "--device", "foo"), "unknown device 'foo'"),
        (("predict", "PICTURE", "--workers", "2", "--device", "cuda"), "leave workers at 1"),
        (("serve", "--device", "foo", "--port", "1"), "unknown device 'foo'"),
        (("evaluate", "MODEL", "--device", "cuda"), "no CUDA GPU is available"),
        (("train", "--device", "cuda:x"), "unknown device 'cuda:x'"),
    ],
)
def test_a_wrong_or_absent_device_is_one_line_for_every_command(untrained_model_path, tmp_path, args, message):
    Image.new("L", (28, 28), 255).save(tmp_path / "picture.png")
    args = [{"PICTURE": str(tmp_path / "picture.png"), "MODEL": str(untrained_model_path)}.get(a, a) for a in args]
    if args[0] in ("predict", "serve"):
        args += ["--model", str(untrained_model_path)]
    result = run_cli(*args, cwd=tmp_path, env={"CUDA_VISIBLE_DEVICES": ""})  # no GPU, whatever the machine has
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("digitocr: error: ") and message in line and "serving" not in result.stderr


def test_missing_data_without_any_source_says_where_to_put_it(tmp_path):
    # No npm on PATH and no network route for torchvision's mirrors from an empty PATH-less environment.
    env = {
        "PATH": str(Path(sys.executable).parent),
        "DIGITOCR_DATA": str(tmp_path / "empty"),
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
    }
    result = run_cli("data", env=env)
    assert result.returncode == 1
    assert "could not get MNIST" in result.stderr and "MNIST/raw" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_file_values_are_refused(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"optimizer": "rmsprop"}))
    result = run_cli("train", "--config", "bad.json", cwd=tmp_path)
    assert result.returncode == 1 and "unknown optimizer 'rmsprop'" in result.stderr


@pytest.mark.slow
def test_default_train_reaches_98_percent_and_evaluate_agrees(tmp_path, mnist_root):
    model = tmp_path / "trained_model.pth"
    trained = run_cli("train", "--json", "--out", str(model), "--data-dir", str(mnist_root))
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout.strip().splitlines()[-1])
    assert summary["test_accuracy"] >= 0.98
    assert summary["model_path"] == str(model) and model.is_file()
    assert {"val_accuracy", "epochs", "train_seconds", "history"} <= set(summary)
    assert set(summary["history"][0]) >= {"epoch", "seconds", "train_loss", "val_accuracy"}
    assert "epoch 1/" in trained.stderr  # the progress bar

    evaluated = run_cli("evaluate", str(model), "--json", "--data-dir", str(mnist_root))
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert metrics["test_accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-6)
    assert sum(map(sum, metrics["confusion_matrix"])) == 10000
    assert set(metrics["per_class"]) == {str(d) for d in range(10)}

    table = run_cli("evaluate", str(model), "--data-dir", str(mnist_root))
    assert "confusion matrix" in table.stdout and "precision" in table.stdout


@pytest.mark.slow
def test_same_command_twice_gives_the_same_accuracy(tmp_path, mnist_root):
    args = ("train", "--json", "--quiet", "--epochs", "1", "--data-dir", str(mnist_root))
    first = run_cli(*args, "--out", str(tmp_path / "a.pth"))
    second = run_cli(*args, "--out", str(tmp_path / "b.pth"))
    accuracy = lambda result: json.loads(result.stdout.strip().splitlines()[-1])["test_accuracy"]  # noqa: E731
    assert accuracy(first) == accuracy(second)


@pytest.mark.slow
def test_ctrl_c_then_the_printed_resume_command_finishes_the_run_where_it_was_going(tmp_path, mnist_root):
    out = tmp_path / "not" / "yet" / "m.pth"  # a folder that does not exist yet: made before training starts
    args = [*DIGITOCR, "train", "--epochs", "30", "--out", str(out), "--data-dir", str(mnist_root)]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    # Wait until training has really started (the first progress bar), then press Ctrl-C.
    deadline = time.time() + 300
    seen = ""
    while "epoch 1/30" not in seen and time.time() < deadline:
        seen += process.stderr.read(1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    checkpoint = out.with_name("m.ckpt")
    assert checkpoint.is_file() and "Traceback" not in stderr
    message = [line for line in stderr.splitlines() if "interrupted" in line]
    assert message and message[-1].startswith("digitocr: training interrupted")  # on a line of its own
    resume = message[-1].split("continue with ")[1].rstrip(")").split()
    assert resume == ["--resume", str(checkpoint)]

    # Exactly the printed command, from another folder holding a model of its own: that one is left alone.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "trained_model.pth").write_bytes(b"someone's model")
    resumed = subprocess.run(
        [*DIGITOCR, "train", *resume, "--json", "--quiet"], capture_output=True, text=True, timeout=900, cwd=elsewhere
    )
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert summary["epochs"] == 30 and summary["model_path"] == str(out) and out.is_file()
    assert (elsewhere / "trained_model.pth").read_bytes() == b"someone's model"
    assert sorted(path.name for path in elsewhere.iterdir()) == ["trained_model.pth"]
    assert not checkpoint.exists()  # the finished run's checkpoint is cleaned up


def test_an_out_path_that_cannot_be_written_is_refused_before_training(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    if os.access(read_only, os.W_OK):  # root writes anywhere; sysfs refuses new files even to root
        read_only = Path("/sys/kernel")
    for out, message in [
        (folder, f"the model path {folder} is a folder"),
        (read_only / "m.pth", f"cannot write the model file {read_only / 'm.pth'}"),
        (tmp_path / "a-file" / "m.pth", f"{tmp_path / 'a-file'} is a file, not a folder"),
    ]:
        (tmp_path / "a-file").write_text("not a folder")
        result = run_cli("train", "--out", str(out), "--data-dir", str(tmp_path / "no-mnist-here"), cwd=tmp_path)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        # One line, and before any data was looked for (no MNIST line on stderr).
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("digitocr: error: ") and message in line
    assert sorted(path.name for path in folder.iterdir()) == []  # no hidden temporary left behind


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"epochs": "two"}, "train setting 'epochs' must be a whole number, got 'two'"),
        ({"model": {"hidden": 256}}, "model setting 'hidden' must be a list of whole numbers, got 256"),
        ({"lr": True}, "train setting 'lr' must be a number, got True"),
        ({"data": {"val_size": 1.5}}, "data setting 'val_size' must be a whole number, got 1.5"),
        ({"augment": {"affine": "yes"}}, "augment setting 'affine' must be true or false, got 'yes'"),
        ({"data": {"data_dir": 3}}, "data setting 'data_dir' must be a string or null, got 3"),
    ],
)
def test_a_config_file_with_a_wrongly_typed_value_is_one_line_naming_it(tmp_path, settings, message):
    (tmp_path / "bad.json").write_text(json.dumps(settings))
    result = run_cli("train", "--config", "bad.json", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"digitocr: error: {message}"]


def test_train_help_gives_each_models_own_defaults():
    from digitocr.presets import preset_config

    mlp, cnn, line = preset_config("mlp", "fast"), preset_config("cnn", "fast"), preset_config("line", "fast")
    assert mlp.epochs != cnn.epochs  # else this test shows nothing
    shown = " ".join(run_cli("train", "--help").stdout.split())
    assert f"(default mlp {mlp.epochs}, cnn {cnn.epochs}, line {line.epochs})" in shown
    assert f"CNN block widths (default {','.join(map(str, cnn.model.channels))})" in shown


# What `digitocr train` with defaults never needs (MNIST present, not under torchrun); each costs 0.3-1.5 s of
# start-up (python -X importtime -m digitocr train). torchvision is only for downloading from its mirrors.
NOT_ON_THE_TRAIN_PATH = [
    "torchvision",
    "torch._dynamo",
    "torch.distributed.fsdp",
    "torch.distributed.tensor",
    "sympy",
    "sklearn",
    "scipy",
    "matplotlib",
    "optuna",
    "onnx",
    "onnxruntime",
    "fastapi",
]
RUN_AND_LIST_MODULES = """
import json, sys
watched = sys.argv[1].split(",")
{run}
print(json.dumps({{"code": code, "modules": sorted(name for name in sys.modules if name in watched)}}))
"""
CLI_TRAIN = "from digitocr.cli import main\ncode = main(sys.argv[2:])"
# The same run minus saving the model file (out=None), through the CLI's modules and the library's train().
LIBRARY_TRAIN = """import digitocr.cli
from digitocr.config import DataConfig, TrainConfig
from digitocr.pipeline import train
code = 0 if train(TrainConfig(epochs=1, data=DataConfig(data_dir=sys.argv[2])), out=None).test_accuracy else 1"""


def modules_after(run: str, *args: str) -> list[str]:
    """Which of NOT_ON_THE_TRAIN_PATH a fresh interpreter had imported after ``run``."""
    script = RUN_AND_LIST_MODULES.format(run=run)
    result = subprocess.run(
        [sys.executable, "-c", script, ",".join(NOT_ON_THE_TRAIN_PATH), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0
    return report["modules"]


@pytest.mark.slow
def test_training_on_present_mnist_imports_nothing_it_does_not_use(mnist_root):
    assert modules_after(LIBRARY_TRAIN, str(mnist_root)) == []


@pytest.mark.slow
def test_digitocr_train_process_imports_nothing_it_does_not_use(tmp_path, mnist_root):
    out = tmp_path / "model.pth"
    assert (
        modules_after(CLI_TRAIN, "train", "--quiet", "--epochs", "1", "--data-dir", str(mnist_root), "--out", str(out))
        == []
    )
    assert out.is_file()


@pytest.mark.slow
def test_a_test_label_changed_in_place_is_refused_by_data_and_evaluate(tmp_path, mnist_root, trained_model_path):
    """The reported bug: label 200 written with size and mtime kept passed `digitocr data` and `evaluate`."""
    folder = tmp_path / "MNIST" / "raw"
    folder.mkdir(parents=True)
    for source in (mnist_root / "MNIST" / "raw").glob("*-ubyte"):
        shutil.copy2(source, folder / source.name)
    assert run_cli("data", "--data-dir", str(tmp_path)).returncode == 0  # an earlier, verified run
    labels = folder / "t10k-labels-idx1-ubyte"
    before = labels.stat()
    content = bytearray(labels.read_bytes())
    content[8 + 1234] = 200
    labels.write_bytes(bytes(content))
    os.utime(labels, ns=(before.st_atime_ns, before.st_mtime_ns))
    for args in (("data",), ("evaluate", str(trained_model_path))):
        result = run_cli(*args, "--data-dir", str(tmp_path))
        assert result.returncode == 1, result.stdout
        errors = [line for line in result.stderr.splitlines() if line.startswith("digitocr: error:")]
        assert len(errors) == 1 and str(labels) in errors[0] and "Traceback" not in result.stderr


def test_a_config_file_with_numbers_python_cannot_hold_is_one_line(tmp_path):
    for text in ('{"lr": 1' + "0" * 400 + "}", '{"epochs": ' + "9" * 5000 + "}"):
        (tmp_path / "bad.json").write_text(text)
        result = run_cli("train", "--config", "bad.json", cwd=tmp_path)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


# A line model small enough to train and evaluate in seconds: 2 steps of 32 lines, 24 test lines.
TINY_LINE_CONFIG = {
    "model": {"name": "line", "channels": [4, 8], "context": [8]},
    "lines": {"lines_per_epoch": 64, "val_lines": 16, "test_lines": 24},
    "epochs": 1,
    "batch_size": 32,
    "optimizer": "adam",
    "lr": 0.003,
}


@pytest.fixture(scope="module")
def tiny_line_model_path(tmp_path_factory) -> Path:
    """As conftest's untrained line model (random weights, batch-norm statistics moved), on 24 test lines."""
    import torch

    from digitocr.config import TrainConfig
    from digitocr.modelfile import save_model
    from digitocr.models import build_model, example_input

    torch.manual_seed(0)
    config = TrainConfig.from_dict(TINY_LINE_CONFIG)
    model = build_model(config.model).train()
    with torch.no_grad():
        model(example_input(lines=True, batch=8))
    path = tmp_path_factory.mktemp("tiny-line") / "line.pth"
    return save_model(path, model.eval(), config, data_sha256="1" * 64, metrics={"test_accuracy": 0.25})


def test_evaluate_a_line_model_reads_test_lines_and_reports_them(tiny_line_model_path, tmp_path, mnist_root):
    report = tmp_path / "report"
    evaluated = run_cli("evaluate", str(tiny_line_model_path), "--json", "--report-dir", str(report))
    assert evaluated.returncode == 0 and "Traceback" not in evaluated.stderr, evaluated.stderr
    metrics = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert set(metrics) == {"test_accuracy", "digit_error_rate", "per_length", "lines"}
    assert metrics["lines"] == TINY_LINE_CONFIG["lines"]["test_lines"]
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["digit_error_rate"] >= 0
    assert set(metrics["per_length"]) <= {str(length) for length in range(13)}
    # The report: the test lines as read and the figures' numbers; no 28x28 figure, nothing it cannot draw.
    saved = json.loads((report / "metrics.json").read_text())
    assert {name: saved[name] for name in metrics} == metrics
    assert saved["model_path"] == str(tiny_line_model_path) and saved["config"]["model"]["name"] == "line"
    assert sorted(saved["report_files"]) == ["lines.png", "metrics.json"]
    assert sorted(path.name for path in report.iterdir()) == ["lines.png", "metrics.json"]
    assert (report / "lines.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    table = run_cli("evaluate", str(tiny_line_model_path))
    assert table.returncode == 0, table.stderr
    assert f"exact-line accuracy: {metrics['test_accuracy']:.2%} of 24 test lines" in table.stdout
    assert f"digit error rate: {metrics['digit_error_rate']:.2%}" in table.stdout
    for length, share in metrics["per_length"].items():
        assert f"{length:>6}  {share:6.2%}" in table.stdout


@pytest.mark.slow
def test_training_a_line_model_counts_lines_and_evaluate_agrees(tmp_path, mnist_root):
    (tmp_path / "line.json").write_text(json.dumps(TINY_LINE_CONFIG))
    model, report = tmp_path / "line.pth", tmp_path / "report"
    trained = run_cli("train", "--config", "line.json", "--out", str(model), "--report-dir", str(report), cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "epoch 1/1" in trained.stderr and "lines/s" in trained.stderr and "img/s" not in trained.stderr
    assert sorted(path.name for path in report.iterdir()) == ["lines.png", "metrics.json", "training_curves.png"]
    saved = json.loads((report / "metrics.json").read_text())
    assert len(saved["history"]) == 1 and saved["lines"] == TINY_LINE_CONFIG["lines"]["test_lines"]
    evaluated = run_cli("evaluate", str(model), "--json")
    metrics = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert metrics["test_accuracy"] == saved["test_accuracy"]
    assert metrics["digit_error_rate"] == saved["digit_error_rate"]
