"""TrainConfig.with_settings: one way to change a config by flat setting names (flags, presets, tuning, notebook)."""

from __future__ import annotations

import dataclasses

import pytest

from digitocr.config import SETTINGS, AugmentConfig, DataConfig, LinesConfig, ModelConfig, TrainConfig
from digitocr.errors import ConfigError


def test_every_field_has_one_flat_name():
    sections = {"model", "data", "augment", "lines"}
    fields = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in sections]
    for kind in (ModelConfig, DataConfig, AugmentConfig, LinesConfig):
        fields += [f.name for f in dataclasses.fields(kind)]
    assert len(SETTINGS) == len(fields)
    assert SETTINGS["model"] == ("model", "name", str) and SETTINGS["hidden"].section == "model"
    assert SETTINGS["val_size"].section == "data" and SETTINGS["lr"].section is None
    assert SETTINGS["lines_per_epoch"].section == "lines"


def test_settings_of_every_section_change_together_and_the_original_stays():
    base = TrainConfig()
    config = base.with_settings(model="cnn", channels=[16, 32], affine=True, val_size=0, lr=1, epochs=2)
    assert config.model.name == "cnn" and config.model.channels == (16, 32)  # a list becomes the field's tuple
    assert config.augment.affine and config.data.val_size == 0 and config.epochs == 2
    assert config.lr == 1.0 and isinstance(config.lr, float)
    assert base == TrainConfig()
    assert config.with_settings(**config.settings()) == config
    assert base.with_settings() == base


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown setting\(s\): learning_rate, name \(known: model, hidden,"):
        TrainConfig().with_settings(learning_rate=0.1, name="cnn")


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"epochs": "two"}, "setting 'epochs' must be a whole number, got 'two'"),
        ({"affine": 1}, "setting 'affine' must be true or false"),
        ({"hidden": [256, "x"]}, "setting 'hidden' must be a list of whole numbers"),
        ({"epochs": 0}, "epochs must be at least 1"),  # validated like from_dict
        ({"device": "tpu"}, "unknown device"),
    ],
)
def test_wrong_values_are_config_errors(settings, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig().with_settings(**settings)
