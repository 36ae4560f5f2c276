"""Every registered model honours its contract: a classifier maps pixels (N, 1, 28, 28) in [0, 1] to logits (N, 10),
a line model lines (N, 1, 32, W) of any width to logits per column (N, W // 4, 11)."""

from __future__ import annotations

import pytest
import torch

from digitocr.config import MNIST_MEAN, MNIST_STD, ModelConfig
from digitocr.errors import ConfigError
from digitocr.models import MLP, MODELS, build_model, count_parameters, example_input, reads_lines

LINE_WIDTHS = (4, 32, 100, 262, 1000)  # one output column up to a long line; 262 is no multiple of 4


def model_outputs(name: str, batch: int) -> list[tuple[torch.Tensor, tuple[int, ...]]]:
    """(logits, the shape they must have) of a fresh ``name`` model on random input of the shapes it reads."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=name)).eval()
    if not reads_lines(ModelConfig(name=name)):
        return [(model(torch.rand(batch, 1, 28, 28)), (batch, 10))]
    # One column per 4 pixels (the last part-column dropped), 10 digits and the CTC blank in each.
    return [(model(example_input(True, batch, width)), (batch, width // 4, 11)) for width in LINE_WIDTHS]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_registered_models_give_the_logits_of_their_contract(name):
    for logits, shape in model_outputs(name, batch=5):
        assert logits.shape == shape and logits.dtype == torch.float32
        assert torch.isfinite(logits).all()


def test_only_the_line_model_reads_lines():
    assert [name for name in MODELS if reads_lines(ModelConfig(name=name))] == ["line"]
    assert example_input(True, 2, width=40).shape == (2, 1, 32, 40)
    assert example_input(False, 2).shape == (2, 1, 28, 28)


def test_a_line_models_columns_see_only_their_neighbourhood():
    """Each output column reads a window around its own pixels: ink far to the right leaves the left columns."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="line", channels=(16, 32, 64, 96), context=(128, 128))).eval()
    line = torch.rand(1, 1, 32, 400)
    changed = line.clone()
    changed[..., 300:] = 0
    with torch.no_grad():
        before, after = model(line), model(changed)
    assert torch.equal(before[:, :50], after[:, :50])  # 200 px to the left of the change
    assert not torch.equal(before[:, 75:], after[:, 75:])


@pytest.mark.parametrize(
    "channels, context",
    [((16, 32, 64, 128), (160, 160)), ((32, 64, 128), (128,)), ((16, 32), ()), ((8, 8, 8, 8, 8), (8,) * 4)],
)
def test_paper_as_far_as_the_line_reach_makes_a_line_read_as_in_any_longer_batch(channels, context):
    """Past ``line_reach`` pixels of paper, more paper changes none of a line's own columns: a line read alone
    (the batch's widest) gets what it gets beside longer lines. With none, its last columns see the convolutions'
    zero padding, which is not paper."""
    torch.manual_seed(0)
    config = ModelConfig(name="line", channels=channels, context=context)
    model = build_model(config).eval()
    for block in model.modules():  # running statistics as after training, not the identity of a fresh model
        if isinstance(block, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            block.running_mean.uniform_(-0.5, 0.5)
    line = (torch.rand(1, 1, 32, 120) > 0.7).float()
    columns = 120 // 4
    reach = config.line_reach()
    with torch.no_grad():
        bare, padded, far = (model(torch.nn.functional.pad(line, (0, extra)))[:, :columns] for extra in (0, reach, 400))
    assert reach % 4 == 0
    assert torch.allclose(padded, far, atol=1e-5)  # float noise of longer sums only
    assert not torch.allclose(bare, far, atol=1e-3)


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
