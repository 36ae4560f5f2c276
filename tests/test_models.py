"""Every registered model honours the contract: pixels (N, 1, 28, 28) in [0, 1] -> logits (N, 10)."""

from __future__ import annotations

import pytest
import torch

from digitocr.config import MNIST_MEAN, MNIST_STD, ModelConfig
from digitocr.errors import ConfigError
from digitocr.models import MLP, MODELS, build_model, count_parameters


@pytest.mark.parametrize("name", sorted(MODELS))
def test_registered_models_map_pixels_to_ten_logits(name):
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=name)).eval()
    logits = model(torch.rand(5, 1, 28, 28))
    assert logits.shape == (5, 10) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()


def test_mlp_layers_follow_the_config():
    model = MLP(ModelConfig(hidden=(64, 32), activation="gelu", dropout=0.1, batch_norm=True))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Linear", "BatchNorm1d", "GELU", "Dropout", "Linear", "BatchNorm1d", "GELU", "Dropout", "Linear"]
    assert count_parameters(model) == (784 * 64 + 64) + 2 * 64 + (64 * 32 + 32) + 2 * 32 + (32 * 10 + 10)


def test_standardisation_is_inside_the_model():
    model = MLP(ModelConfig(hidden=(8,))).eval()
    x = torch.rand(3, 1, 28, 28)
    expected = model.layers(((x - MNIST_MEAN) / MNIST_STD).flatten(1))
    assert torch.allclose(model(x), expected)


def test_unknown_model_or_activation_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown model"):
        build_model(ModelConfig(name="transformer"))
    with pytest.raises(ConfigError, match="unknown activation"):
        build_model(ModelConfig(activation="swish2"))
