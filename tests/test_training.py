"""The trainer on small data the tests make: schedules, determinism, divergence, Ctrl-C and resume."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from digitocr.config import OPTIMIZERS, SCHEDULES, LinesConfig, ModelConfig, TrainConfig
from digitocr.data import MNISTData, Split
from digitocr.errors import ConfigError, TrainingDiverged, TrainingInterrupted
from digitocr.models import build_model
from digitocr.training import Optimizer, TrainCallbacks, fit, learning_rate


def synthetic_data(n: int = 512) -> MNISTData:
    """Ten classes that a small MLP can tell apart: a bright square whose position encodes the label."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 10
    images = torch.rand(n, 1, 28, 28, generator=generator) * 0.2
    for digit in range(10):
        row, col = divmod(digit, 5)
        images[labels == digit, 0, 4 + row * 10 : 10 + row * 10, 2 + col * 5 : 6 + col * 5] = 1.0
    split = lambda part: Split(images[part], labels[part])  # noqa: E731
    return MNISTData(
        train=split(slice(0, n - 128)), val=split(slice(n - 128, n - 64)), test=split(slice(n - 64, n)), sha256="0" * 64
    )


def small_config(**changes) -> TrainConfig:
    base = dict(model=ModelConfig(hidden=(32,)), epochs=3, batch_size=32, lr=0.05, precision="fp32")
    return TrainConfig(**{**base, **changes})


def trained_weights(config: TrainConfig, data: MNISTData, **fit_args) -> dict:
    torch.manual_seed(config.seed)
    model = build_model(config.model)
    fit(model, data, config, **fit_args)
    return model.state_dict()


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_schedules_peak_at_lr_and_stay_positive(schedule):
    config = small_config(schedule=schedule, lr=0.4, warmup_fraction=0.25)
    rates = [learning_rate(config, step, 100) for step in range(100)]
    assert max(rates) == pytest.approx(0.4, rel=0.02) and min(rates) >= 0
    if schedule != "constant":
        assert rates[0] < 0.1 and rates[-1] < 0.01 and rates.index(max(rates)) in range(20, 30)


def test_training_learns_and_selects_on_validation():
    data = synthetic_data()
    config = small_config()
    torch.manual_seed(0)
    model = build_model(config.model)
    history = fit(model, data, config)
    assert [stats.epoch for stats in history.epochs] == [1, 2, 3]
    assert history.epochs[-1].val_accuracy > 0.9
    assert history.epochs[-1].train_loss < history.epochs[0].train_loss
    assert 1 <= history.best_epoch <= 3 and not model.training


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_same_seed_gives_identical_weights(optimizer):
    data = synthetic_data()
    config = small_config(
        optimizer=optimizer, lr=0.01 if optimizer != "sgd" else 0.05, model=ModelConfig(hidden=(32,), dropout=0.2)
    )
    first, second = trained_weights(config, data), trained_weights(config, data)
    assert all(torch.equal(first[name], second[name]) for name in first)
    other = trained_weights(small_config(optimizer=optimizer, seed=1, model=config.model), data)
    assert not torch.equal(first["layers.0.weight"], other["layers.0.weight"])


def torch_optim_twin(config: TrainConfig, parameters) -> torch.optim.Optimizer:
    """The torch.optim class digitocr's Optimizer stands in for, with the same settings."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            parameters,
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=config.nesterov and config.momentum > 0,
        )
    kind = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return kind(parameters, lr=config.lr, betas=(config.momentum, 0.999), weight_decay=config.weight_decay)


@pytest.mark.parametrize(
    "changes",
    [
        dict(optimizer="sgd"),
        dict(optimizer="sgd", momentum=0.0),
        dict(optimizer="sgd", nesterov=False),
        dict(optimizer="adam", lr=3e-3),
        dict(optimizer="adamw", lr=3e-3, weight_decay=0.05),
    ],
)
def test_optimizer_matches_torch_optim_bit_for_bit_across_a_state_round_trip(changes):
    config = small_config(model=ModelConfig(hidden=(32,), batch_norm=True), **changes)
    data = synthetic_data()
    torch.manual_seed(0)
    ours_model = build_model(config.model)
    twin_model = build_model(config.model)
    twin_model.load_state_dict(ours_model.state_dict())
    ours, twin = Optimizer(ours_model.parameters(), config), torch_optim_twin(config, twin_model.parameters())
    for step in range(12):
        lr = learning_rate(config, step, 12)
        ours.lr = lr
        for group in twin.param_groups:
            group["lr"] = lr
        images, labels = data.train.images[step * 32 : (step + 1) * 32], data.train.labels[step * 32 : (step + 1) * 32]
        for model, optimizer in ((ours_model, ours), (twin_model, twin)):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
        if step == 5:  # what a checkpoint does: the state alone must carry the run on
            saved = ours.state_dict()
            ours = Optimizer(ours_model.parameters(), config)
            ours.load_state_dict(saved)
    for name, tensor in ours_model.state_dict().items():
        assert torch.equal(tensor, twin_model.state_dict()[name]), name


def test_nan_loss_stops_with_the_step_and_advice():
    data = synthetic_data()
    with pytest.raises(TrainingDiverged, match=r"at step \d+ .*lower learning rate"):
        trained_weights(small_config(lr=1e6, optimizer="sgd", momentum=0.9, label_smoothing=0.0), data)


def test_batch_larger_than_training_set_is_a_config_error():
    with pytest.raises(ConfigError, match="larger than"):
        trained_weights(small_config(batch_size=100_000), synthetic_data())


class _CtrlCAt(TrainCallbacks):
    """Sends this process a real SIGINT at a given global step, as a user pressing Ctrl-C would."""

    def __init__(self, step: int):
        self.step, self.seen = step, 0

    def on_step(self, step, loss, images):
        self.seen += 1
        if self.seen == self.step:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_ctrl_c_saves_a_checkpoint_and_resume_matches_an_uninterrupted_run(tmp_path, optimizer):
    data = synthetic_data()
    config = small_config(
        model=ModelConfig(hidden=(32,), dropout=0.1), optimizer=optimizer, lr=0.05 if optimizer == "sgd" else 3e-3
    )
    uninterrupted = trained_weights(config, data)
    checkpoint = tmp_path / "run.ckpt"
    with pytest.raises(TrainingInterrupted) as interrupted:
        trained_weights(config, data, callbacks=_CtrlCAt(step=17), checkpoint_path=checkpoint)  # mid-epoch 2
    assert interrupted.value.checkpoint_path == str(checkpoint) and checkpoint.is_file()
    resumed = trained_weights(config, data, resume_from=checkpoint)
    assert all(torch.equal(uninterrupted[name], resumed[name]) for name in uninterrupted)


def test_ctrl_c_and_resume_of_a_line_model_match_an_uninterrupted_run(tmp_path):
    """Lines drawn on the fly: the resumed run skips the pools of batches it trained on without drawing them, and
    draws the rest as the uninterrupted run did (each pool's lines come from the epoch's seed and its first step;
    interrupted within a pool, it draws that pool again and skips the batches done)."""
    data = synthetic_data()
    config = small_config(
        model=ModelConfig(name="line", channels=(4, 8), context=(8,), dropout=0.1),
        lines=LinesConfig(lines_per_epoch=384, val_lines=64, max_digits=4),
        optimizer="adam",
        lr=3e-3,
    )  # 12 steps an epoch: a pool of POOL_BATCHES (8) and a short one of 4
    uninterrupted = trained_weights(config, data)
    checkpoint = tmp_path / "run.ckpt"
    with pytest.raises(TrainingInterrupted):
        # mid-epoch 2, in its short pool: the resumed run skips the first pool whole and 2 batches of the second
        trained_weights(config, data, callbacks=_CtrlCAt(step=22), checkpoint_path=checkpoint)
    resumed = trained_weights(config, data, resume_from=checkpoint)
    assert all(torch.equal(uninterrupted[name], resumed[name]) for name in uninterrupted)


def test_resume_with_another_config_is_refused(tmp_path):
    data = synthetic_data()
    checkpoint = tmp_path / "run.ckpt"
    with pytest.raises(TrainingInterrupted):
        trained_weights(small_config(), data, callbacks=_CtrlCAt(step=3), checkpoint_path=checkpoint)
    with pytest.raises(ConfigError, match="another configuration"):
        trained_weights(small_config(lr=0.01), data, resume_from=checkpoint)


def test_config_round_trips_through_json(tmp_path):
    config = small_config(model=ModelConfig(hidden=(64, 32), dropout=0.25), optimizer="adamw")
    path = tmp_path / "config.json"
    import json

    path.write_text(json.dumps(config.to_dict()))
    assert TrainConfig.from_json(path) == config
    with pytest.raises(ConfigError, match="unknown train setting"):
        TrainConfig.from_dict({"epochz": 3})
