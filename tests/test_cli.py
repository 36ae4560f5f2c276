"""The `digitocr` command as a user runs it: real processes, real MNIST for the end-to-end run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

DIGITOCR = [sys.executable, "-m", "digitocr"]


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*DIGITOCR, *args], capture_output=True, text=True, cwd=cwd, timeout=600,
                          env={**os.environ, **(env or {})})


def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("data", "train", "evaluate"):
        assert command in result.stdout


@pytest.mark.parametrize("args, message", [
    (("evaluate", "no-such-model.pth"), "model file not found: no-such-model.pth"),
    (("train", "--config", "no-such-config.json"), "config file not found"),
    (("train", "--epochs", "zero"), "expected a whole number"),
    (("train", "--lr", "-1"), "expected a positive number"),
    (("train", "--hidden", "512,x"), "comma-separated whole numbers"),
    (("train", "--device", "tpu"), "unknown device"),
    (("train", "--resume", "no-such.ckpt"), "checkpoint not found"),
    (("serve", "--port", "99999"), "a port number in 1-65535"),
    (("predict", ".", "--model", "no-such-model.pth"), "model file not found"),
])
def test_user_mistakes_get_one_clear_line_and_no_traceback(args, message, tmp_path):
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_data_without_any_source_says_where_to_put_it(tmp_path):
    # No npm on PATH and no network route for torchvision's mirrors from an empty PATH-less environment.
    env = {"PATH": str(Path(sys.executable).parent), "DIGITOCR_DATA": str(tmp_path / "empty"),
           "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
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
def test_ctrl_c_then_resume_finishes_the_run(tmp_path, mnist_root):
    args = [*DIGITOCR, "train", "--epochs", "30", "--out", str(tmp_path / "m.pth"), "--data-dir", str(mnist_root)]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Wait until training has really started (the first progress bar), then press Ctrl-C.
    deadline = time.time() + 300
    seen = ""
    while "epoch 1/30" not in seen and time.time() < deadline:
        seen += process.stderr.read(1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    checkpoint = tmp_path / "m.ckpt"
    assert checkpoint.is_file() and f"--resume {checkpoint}" in stderr and "Traceback" not in stderr

    # Shorten the rest: resume uses the checkpoint's own settings, so resume it as it is but only check it runs on.
    resumed = subprocess.run([*DIGITOCR, "train", "--resume", str(checkpoint), "--json", "--quiet",
                              "--out", str(tmp_path / "m.pth")], capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert summary["epochs"] == 30 and (tmp_path / "m.pth").is_file()
    assert not checkpoint.exists()  # the finished run's checkpoint is cleaned up


@pytest.mark.parametrize("settings, message", [
    ({"epochs": "two"}, "train setting 'epochs' must be a whole number, got 'two'"),
    ({"model": {"hidden": 256}}, "model setting 'hidden' must be a list of whole numbers, got 256"),
    ({"lr": True}, "train setting 'lr' must be a number, got True"),
    ({"data": {"val_size": 1.5}}, "data setting 'val_size' must be a whole number, got 1.5"),
    ({"augment": {"affine": "yes"}}, "augment setting 'affine' must be true or false, got 'yes'"),
    ({"data": {"data_dir": 3}}, "data setting 'data_dir' must be a string or null, got 3"),
])
def test_a_config_file_with_a_wrongly_typed_value_is_one_line_naming_it(tmp_path, settings, message):
    (tmp_path / "bad.json").write_text(json.dumps(settings))
    result = run_cli("train", "--config", "bad.json", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"digitocr: error: {message}"]
