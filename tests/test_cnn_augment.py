"""The CNN, batch augmentation, EMA, test-time augmentation and presets (issue 7)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
import torch

from digitocr.config import AugmentConfig, ModelConfig, TrainConfig
from digitocr.data import MNISTData, Split
from digitocr.data.augment import augment_batch, make_augment, shift_images
from digitocr.ema import WeightEMA
from digitocr.errors import ConfigError
from digitocr.inference import ShiftTTA
from digitocr.modelfile import load_model, save_model
from digitocr.models import MODELS, build_model, example_input, reads_lines
from digitocr.presets import PRESETS, preset_config
from digitocr.training import fit


def _digit_like_batch(count: int = 16) -> torch.Tensor:
    """Bright strokes in the middle of a dark 28x28 field, as in MNIST (augmentation needs a border to move into)."""
    images = torch.zeros(count, 1, 28, 28)
    generator = torch.Generator().manual_seed(0)
    for index in range(count):
        top, left = torch.randint(6, 10, (2,), generator=generator).tolist()
        images[index, 0, top : top + 12, left : left + 3] = 1.0
        images[index, 0, top : top + 3, left : left + 10] = 0.8
    return images


def _tiny_data(count: int = 256) -> MNISTData:
    generator = torch.Generator().manual_seed(1)
    labels = torch.arange(count) % 10
    images = torch.rand(count, 1, 28, 28, generator=generator) * 0.2
    for digit in range(10):  # a learnable signal: a bright bar whose row encodes the label
        images[labels == digit, 0, 2 + 2 * digit, 4:24] = 1.0
    split = Split(images, labels)
    return MNISTData(
        train=split, val=Split(images[:64], labels[:64]), test=Split(images[:64], labels[:64]), sha256="tiny"
    )


# --- models: every entry of the registry keeps the same contract ---------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_contract(name):
    lines = reads_lines(ModelConfig(name=name))
    model = build_model(ModelConfig(name=name)).eval()
    logits = model(example_input(lines, 5, width=100))
    assert logits.shape == ((5, 25, 11) if lines else (5, 10)) and logits.dtype == torch.float32


@pytest.mark.parametrize("name", sorted(MODELS))
def test_save_load_gives_identical_logits(name, tmp_path):
    config = preset_config(name, "fast")
    lines = reads_lines(config.model)
    torch.manual_seed(0)
    model = build_model(config.model)
    model.train()
    model(example_input(lines, 32))  # move batch-norm statistics away from their initial values
    model.eval()
    path = save_model(tmp_path / f"{name}.pth", model, config)
    images = example_input(lines, 7)
    assert torch.equal(load_model(path)(images), model(images))


def test_cnn_widths_follow_channels():
    model = build_model(ModelConfig(name="cnn", channels=(8, 16)))
    assert model.head.in_features == 16
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ConfigError):
        build_model(ModelConfig(name="cnn", channels=(4,) * 6))  # 28 px halved 6 times is below 1 px


# --- augmentation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("settings", [{"affine": True}, {"elastic": True}, {"affine": True, "elastic": True}])
def test_augmentation_changes_images_and_keeps_shape(settings):
    images = _digit_like_batch()
    config = AugmentConfig(**settings)
    augmented = augment_batch(images, config, torch.Generator().manual_seed(0))
    assert augmented.shape == images.shape and augmented.dtype == images.dtype
    assert augmented.min() >= 0 and augmented.max() <= 1
    changed = (augmented - images).abs().flatten(1).sum(1)
    assert (changed > 1).all()  # every image moved, each differently
    assert len(set(changed.tolist())) == len(images)


def test_augmentation_is_deterministic_under_a_seed_and_off_by_default():
    images = _digit_like_batch()
    config = AugmentConfig(affine=True, elastic=True)
    first = make_augment(config, seed=3)(images)
    assert torch.equal(first, make_augment(config, seed=3)(images))
    assert not torch.equal(first, make_augment(config, seed=4)(images))
    assert make_augment(AugmentConfig(), seed=3)(images) is images
    assert not TrainConfig().augment.enabled


def test_elastic_distortion_keeps_ink_mass_roughly():
    images = _digit_like_batch(32)
    augmented = augment_batch(images, AugmentConfig(elastic=True), torch.Generator().manual_seed(0))
    ratio = augmented.sum((1, 2, 3)) / images.sum((1, 2, 3))
    # Local stretching and squeezing change each image's ink a little; on average it is kept.
    assert 0.9 < ratio.mean() < 1.1 and ((ratio > 0.5) & (ratio < 2)).all(), ratio


def test_low_resolution_blurs_the_chosen_share_and_keeps_strokes_saturated():
    images = _digit_like_batch(64)
    config = AugmentConfig(low_resolution=0.5, low_resolution_min=6, low_resolution_max=8)
    seen = augment_batch(images, config, torch.Generator().manual_seed(0))
    assert seen.shape == images.shape and seen.min() >= 0 and seen.max() <= 1
    changed = (seen - images).abs().flatten(1).amax(1) > 0.05
    assert 16 <= int(changed.sum()) <= 48  # about half, drawn per image
    assert torch.equal(seen[~changed], images[~changed])
    blurred = seen[changed]
    # Blocky and soft: far more grey levels than the two of the sharp strokes, yet the stroke cores reach 1.
    assert all(len(image.unique()) > 10 for image in blurred)
    assert torch.allclose(blurred.flatten(1).amax(1), torch.ones(len(blurred)))
    assert torch.equal(seen, augment_batch(images, config, torch.Generator().manual_seed(0)))  # seeded
    assert AugmentConfig(low_resolution=0.1).enabled and not AugmentConfig().enabled
    blank = torch.zeros(4, 1, 28, 28)  # no ink to saturate: stays blank, no NaN
    assert torch.equal(augment_batch(blank, AugmentConfig(low_resolution=1.0), torch.Generator()), blank)


def test_affine_zero_strength_is_identity():
    images = _digit_like_batch()
    still = AugmentConfig(affine=True, rotate=0, translate=0, scale=0, shear=0)
    assert torch.allclose(augment_batch(images, still, torch.Generator()), images, atol=1e-5)


def test_shift_images_moves_by_whole_pixels():
    image = torch.zeros(1, 1, 5, 5)
    image[0, 0, 2, 2] = 1
    moved = shift_images(image, dx=1, dy=-1)
    assert moved[0, 0, 1, 3] == 1 and moved.sum() == 1


# --- EMA and test-time augmentation ---------------------------------------------------------------------------


def test_ema_follows_the_model_but_differs_from_it():
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="cnn", channels=(4, 8)))
    ema = WeightEMA(model, decay=0.9)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    start = [p.clone() for p in model.parameters()]
    for _ in range(5):
        model(torch.rand(8, 1, 28, 28)).square().mean().backward()
        optimizer.step()
        optimizer.zero_grad()
        ema.update(model)
    for raw, averaged, initial in zip(model.parameters(), ema.module.parameters(), start):
        assert not torch.equal(raw, averaged)
        assert not torch.equal(averaged, initial)
    assert ema.module.blocks[1].num_batches_tracked == model.blocks[1].num_batches_tracked


def test_fit_with_ema_keeps_the_averaged_weights():
    data = _tiny_data()
    config = TrainConfig(model=ModelConfig(name="cnn", channels=(4, 8)), epochs=2, batch_size=32, lr=0.05)
    torch.manual_seed(0)
    plain = build_model(config.model)
    fit(plain, data, config)
    torch.manual_seed(0)
    averaged = build_model(config.model)
    fit(averaged, data, dataclasses.replace(config, ema=0.99))
    images = data.test.images[:8]
    assert not torch.allclose(plain(images), averaged(images))


def test_fit_with_augmentation_trains_differently():
    data = _tiny_data()
    config = TrainConfig(model=ModelConfig(hidden=(32,)), epochs=1, batch_size=32)
    results = []
    for augment in (AugmentConfig(), AugmentConfig(affine=True)):
        torch.manual_seed(0)
        model = build_model(config.model)
        fit(model, data, dataclasses.replace(config, augment=augment))
        results.append(model(data.test.images[:8]))
    assert not torch.allclose(*results)


def test_tta_changes_logits_but_not_shape():
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="cnn", channels=(4, 8))).eval()
    images = _digit_like_batch(6)
    with torch.no_grad():
        plain, averaged = model(images), ShiftTTA(model)(images)
    assert averaged.shape == plain.shape
    assert not torch.allclose(plain, averaged)
    assert torch.allclose(averaged.exp().sum(1), torch.ones(6), atol=1e-5)  # log-probabilities


# --- presets and configs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("model,preset", [(model, preset) for model in PRESETS for preset in PRESETS[model]])
def test_presets_load_validate_and_round_trip(model, preset):
    config = preset_config(model, preset)
    assert config.model.name == model
    config.validate()
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    build_model(config.model)


def test_mlp_fast_preset_is_the_default_run():
    assert preset_config("mlp", "fast") == TrainConfig()
    assert preset_config("mlp") == TrainConfig()


def test_unknown_presets_and_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="accurate"):
        preset_config("cnn", "huge")
    with pytest.raises(ConfigError):
        preset_config("transformer")
    with pytest.raises(ConfigError):
        TrainConfig(ema=1.0).validate()
    with pytest.raises(ConfigError):
        TrainConfig.from_dict({"augment": {"rotate": -1}})
    with pytest.raises(ConfigError, match="low-resolution share"):
        TrainConfig.from_dict({"augment": {"low_resolution": 1.5}})
    with pytest.raises(ConfigError, match="low-resolution sizes"):
        TrainConfig.from_dict({"augment": {"low_resolution": 0.5, "low_resolution_min": 9, "low_resolution_max": 8}})
    with pytest.raises(ConfigError, match="unknown augment"):
        TrainConfig.from_dict({"augment": {"mixup": True}})


def test_cli_preset_and_flags(tmp_path):
    from digitocr.cli import build_parser
    from digitocr.cli.train_cmd import config_from_args

    parse = build_parser().parse_args
    config = config_from_args(parse(["train", "--model", "cnn", "--preset", "accurate", "--epochs", "3"]))
    assert config == dataclasses.replace(preset_config("cnn", "accurate"), epochs=3)
    config = config_from_args(parse(["train", "--model", "cnn", "--no-affine", "--ema", "0.99", "--tta"]))
    assert config.model.name == "cnn" and not config.augment.affine and config.ema == 0.99 and config.tta
    config = config_from_args(parse(["train", "--preset", "reader", "--low-resolution", "0.25"]))
    assert config.augment.low_resolution == 0.25 and config.augment.elastic and config.model.hidden == (1024, 1024)
    with pytest.raises(SystemExit):
        parse(["train", "--low-resolution", "2"])
    (tmp_path / "c.json").write_text("{}")
    with pytest.raises(ConfigError):
        config_from_args(parse(["train", "--preset", "fast", "--config", str(tmp_path / "c.json")]))


# --- real MNIST -----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_trains_a_cnn_on_a_subset(mnist_root, tmp_path):
    """`digitocr train --model cnn --epochs 1` end to end, on 5,000 training images (--val-size leaves the rest)."""
    out = tmp_path / "cnn.pth"
    command = [
        sys.executable,
        "-m",
        "digitocr",
        "train",
        "--model",
        "cnn",
        "--epochs",
        "1",
        "--channels",
        "8,16,32",
        "--val-size",
        "55000",
        "--affine",
        "--ema",
        "0.99",
        "--tta",
        "--quiet",
        "--json",
        "--out",
        str(out),
    ]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    summary = json.loads(finished.stdout.strip().splitlines()[-1])
    assert summary["config"]["model"]["name"] == "cnn" and summary["config"]["tta"]
    assert summary["test_accuracy"] > 0.5  # one short epoch on 5,000 distorted images: learning, not done
    assert load_model(out)(torch.rand(2, 1, 28, 28)).shape == (2, 10)
