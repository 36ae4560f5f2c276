"""Model files: round trip, and a clear error (never code execution) for anything else."""

from __future__ import annotations

import pytest
import torch

from digitocr.config import ModelConfig, TrainConfig
from digitocr.errors import ModelFileError
from digitocr.modelfile import load_model, read_model_file, save_model
from digitocr.models import MODELS, build_model, example_input, reads_lines

LINE_CONFIG = TrainConfig(model=ModelConfig(name="line", channels=(16, 32, 64, 96), context=(128, 128)))


@pytest.fixture
def saved(tmp_path):
    config = TrainConfig(model=ModelConfig(hidden=(32,)))
    torch.manual_seed(0)
    model = build_model(config.model).eval()
    path = save_model(tmp_path / "model.pth", model, config, metrics={"test_accuracy": 0.5}, data_sha256="ab" * 32)
    return path, model, config


@pytest.mark.parametrize("name", sorted(MODELS))
def test_save_then_load_gives_identical_logits(tmp_path, name):
    config = TrainConfig(model=ModelConfig(name=name))
    torch.manual_seed(1)
    model = build_model(config.model).eval()
    path = save_model(tmp_path / "m.pth", model, config)
    x = example_input(reads_lines(config.model), 7, width=100)
    assert torch.equal(load_model(path)(x), model(x))


def test_a_line_model_file_gives_identical_logits_at_every_width(tmp_path):
    torch.manual_seed(2)
    model = build_model(LINE_CONFIG.model).train()
    model(example_input(True, 8))  # batch-norm statistics away from their initial values, so that they count
    model.eval()
    path = save_model(tmp_path / "line.pth", model, LINE_CONFIG, metrics={"test_accuracy": 0.5})
    payload = torch.load(path, weights_only=True)
    assert payload["config"] == LINE_CONFIG.to_dict() and payload["config"]["model"]["name"] == "line"
    file = read_model_file(path)
    assert file.config == LINE_CONFIG and reads_lines(file.config.model) and not file.model.training
    assert file.metadata["metrics"] == {"test_accuracy": 0.5}
    for width in (4, 32, 100, 260):
        lines = torch.rand(3, 1, 32, width)
        with torch.no_grad():
            assert torch.equal(file.model(lines), model(lines))


@pytest.mark.parametrize(
    "change",
    [
        lambda model: model.update(context=[64, 64]),  # another shape: would not load
        lambda model: model.update(activation="gelu"),  # the same shapes: would load and read wrong
        lambda model: model.update(name="cnn"),
    ],
)
def test_a_line_models_changed_config_is_refused(tmp_path, change):
    path = save_model(tmp_path / "line.pth", build_model(LINE_CONFIG.model).eval(), LINE_CONFIG)
    payload = torch.load(path, weights_only=True)
    change(payload["config"]["model"])
    torch.save(payload, path)
    with pytest.raises(ModelFileError, match="changed after it was written"):
        load_model(path)


def test_file_is_plain_data_with_metadata(saved):
    path, _, config = saved
    payload = torch.load(path, weights_only=True)
    assert payload["config"] == config.to_dict()
    assert payload["normalization"] == {"mean": 0.1307, "std": 0.3081}
    assert payload["class_names"] == [str(d) for d in range(10)]
    assert payload["data_sha256"] == "ab" * 32 and payload["metrics"]["test_accuracy"] == 0.5
    assert {"digitocr", "torch", "torchvision", "python"} <= set(payload["versions"])
    file = read_model_file(path)
    assert file.config == config and not file.model.training


def test_tampered_weights_are_refused(saved):
    path, _, _ = saved
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["layers.0.weight"][0, 0] += 1
    torch.save(payload, path)
    with pytest.raises(ModelFileError, match="changed after it was written"):
        load_model(path)


@pytest.mark.parametrize(
    "change",
    [
        lambda payload: payload["config"]["model"].update(activation="tanh"),  # loaded silently, read 8 for a 7
        lambda payload: payload["metrics"].update(test_accuracy=0.99),
        lambda payload: payload["normalization"].update(mean=0.5),
        lambda payload: payload["class_names"].reverse(),
        lambda payload: payload.update(data_sha256="cd" * 32),
        lambda payload: payload.update(note="added"),
    ],
)
def test_a_changed_setting_or_claim_is_refused(saved, change):
    path, _, _ = saved
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, path)
    with pytest.raises(ModelFileError, match="changed after it was written"):
        load_model(path)


def test_a_file_of_the_previous_format_is_refused_with_advice(saved):
    path, _, _ = saved
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = 1
    torch.save(payload, path)
    with pytest.raises(ModelFileError, match=r"version 1.*train it again"):
        load_model(path)


def test_truncated_file_is_refused(saved):
    path, _, _ = saved
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ModelFileError, match="not a readable digitocr model"):
        load_model(path)


def test_other_files_are_refused(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ModelFileError, match="not a digitocr model"):
        load_model(tmp_path / "other.pth")
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(ModelFileError):
        load_model(tmp_path / "text.pth")
    with pytest.raises(ModelFileError, match="not found"):
        load_model(tmp_path / "missing.pth")


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/digitocr-exploit-ran",))


def test_pickled_code_is_never_run(tmp_path):
    import os

    marker = "/tmp/digitocr-exploit-ran"
    if os.path.exists(marker):
        os.remove(marker)
    torch.save({"format": "digitocr-model", "payload": _Exploit()}, tmp_path / "evil.pth")
    with pytest.raises(ModelFileError):
        load_model(tmp_path / "evil.pth")
    assert not os.path.exists(marker)
