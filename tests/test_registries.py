"""Every registry covers every model, and the CLI offers the registries' names rather than copies of them."""

from __future__ import annotations

import argparse

import pytest

from digitocr import config, models
from digitocr.cli import build_parser
from digitocr.errors import ConfigError
from digitocr.presets import DEFAULT_PRESET, DESCRIPTIONS, PRESETS, preset_config, preset_names
from digitocr.tune import study
from digitocr.tune.space import MODEL_SPACES, OPTIMIZER_RANGES


def test_every_model_has_the_default_preset_descriptions_and_a_search_space():
    """A model has the presets there are recipes for: the line model has no 28x28 "accurate" one, its reader is
    its most accurate; each has the default, so `digitocr train --model M` always works."""
    assert list(PRESETS) == list(models.MODELS)
    for model in models.MODELS:
        assert DEFAULT_PRESET in PRESETS[model], model
    assert preset_names() == sorted({preset for presets in PRESETS.values() for preset in presets})
    assert set(DESCRIPTIONS) == {(model, preset) for model in models.MODELS for preset in PRESETS[model]}
    assert all(DESCRIPTIONS.values())
    assert list(MODEL_SPACES) == list(models.MODELS)


def test_a_preset_a_model_lacks_is_a_config_error_naming_its_own():
    missing = [(model, preset) for model in PRESETS for preset in preset_names() if preset not in PRESETS[model]]
    for model, preset in missing:
        with pytest.raises(ConfigError, match=", ".join(PRESETS[model])):
            preset_config(model, preset)


def test_named_choices_are_the_implementations_names():
    assert tuple(models.ACTIVATIONS) == config.ACTIVATIONS
    assert tuple(study.PRUNERS) == config.PRUNERS
    assert set(OPTIMIZER_RANGES) <= set(config.OPTIMIZERS)


def subcommand(name: str) -> dict[str, argparse.Action]:
    parser = build_parser()
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return {action.dest: action for action in commands.choices[name]._actions}


def test_cli_choices_come_from_the_registries():
    train = subcommand("train")
    assert list(train["model"].choices) == list(models.MODELS)
    assert list(train["preset"].choices) == preset_names()
    assert tuple(train["activation"].choices) == tuple(models.ACTIVATIONS)
    assert tuple(train["optimizer"].choices) == config.OPTIMIZERS
    assert tuple(train["schedule"].choices) == config.SCHEDULES
    assert tuple(train["precision"].choices) == config.PRECISIONS
    tune = subcommand("tune")
    assert tuple(tune["pruner"].choices) == tuple(study.PRUNERS)
    assert " | ".join(MODEL_SPACES) in tune["model"].help
    for command in (train, tune):
        assert " | ".join(config.DEVICES) in command["device"].help


def test_every_train_flag_that_is_not_about_the_run_sets_a_setting():
    """config_from_args applies the flags whose destination is a setting's flat name: none may be missed."""
    run_flags = {"help", "preset", "config", "out", "resume", "quiet", "report_dir", "json"}
    assert set(subcommand("train")) - run_flags <= set(config.SETTINGS)
