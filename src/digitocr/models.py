"""The models: pure ``nn.Module``s. The classifiers map pixels (N, 1, 28, 28) in [0, 1] to logits (N, 10); the
line model maps a line of digits (N, 1, 32, W) to logits per column (N, W // 4, 11), read with CTC.

Standardisation lives inside each model, so every caller (training, predict, the server, ONNX export)
feeds the same thing. ``MODELS`` maps a config's ``name`` to its class; tests run over the registry.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from digitocr.config import (
    BLANK,
    IMAGE_SIZE,
    LINE_CONTEXT_KERNEL,
    LINE_HEIGHT,
    LINE_MODELS,
    LINE_STRIDE,
    LINE_WIDTH_POOLS,
    MNIST_MEAN,
    MNIST_STD,
    NUM_CLASSES,
    ModelConfig,
)
from digitocr.errors import ConfigError

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


class Standardize(nn.Module):
    """(x - MNIST_MEAN) / MNIST_STD, with the constants stored as buffers so they travel with the weights."""

    def __init__(self, mean: float = MNIST_MEAN, std: float = MNIST_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean))
        self.register_buffer("std", torch.tensor(std))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class MLP(nn.Module):
    """Fully connected: standardise, flatten, then [linear, (batch norm), activation, (dropout)] per hidden layer."""

    SETTINGS = ("hidden", "activation", "dropout", "batch_norm")  # the ModelConfig fields it is built from

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.activation not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {config.activation!r} ({', '.join(ACTIVATIONS)})")
        self.standardize = Standardize()
        self.flatten = nn.Flatten()
        layers: list[nn.Module] = []
        width = IMAGE_SIZE * IMAGE_SIZE
        for hidden in config.hidden:
            layers.append(nn.Linear(width, hidden))
            if config.batch_norm:
                layers.append(nn.BatchNorm1d(hidden))
            layers.append(ACTIVATIONS[config.activation]())
            if config.dropout > 0:
                layers.append(nn.Dropout(config.dropout))
            width = hidden
        layers.append(nn.Linear(width, NUM_CLASSES))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:  # (N, 1, 28, 28) in [0, 1] -> (N, 10) logits
        return self.layers(self.flatten(self.standardize(x)))


class CNN(nn.Module):
    """Convolutional: standardise, then per block [conv 3x3, batch norm, activation, 2x2 max-pool], then global
    max-pooling and one linear layer. ``channels`` sets each block's width; each block halves the image size.
    """

    SETTINGS = ("channels", "activation", "dropout")  # the ModelConfig fields it is built from

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.activation not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {config.activation!r} ({', '.join(ACTIVATIONS)})")
        if 2 ** len(config.channels) > IMAGE_SIZE:
            raise ConfigError(f"a CNN of {len(config.channels)} blocks pools a {IMAGE_SIZE}-pixel image below 1 pixel")
        self.standardize = Standardize()
        blocks: list[nn.Module] = []
        width = 1
        for channels in config.channels:
            # bias=False: batch norm's shift makes a conv bias redundant.
            blocks += [
                nn.Conv2d(width, channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(channels),
                ACTIVATIONS[config.activation](),
                nn.MaxPool2d(2),
            ]
            width = channels
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveMaxPool2d(1)  # (N, C, h, w) -> (N, C, 1, 1): any ink anywhere counts
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self.head = nn.Linear(width, NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:  # (N, 1, 28, 28) in [0, 1] -> (N, 10) logits
        features = self.pool(self.blocks(self.standardize(x))).flatten(1)
        return self.head(self.dropout(features))


class LineModel(nn.Module):
    """Reads a line of digits without cutting it (CNN + CTC): standardise, 2-D conv blocks that halve the height
    each (the first two also halve the width: one output column per ``LINE_STRIDE`` input columns), the remaining
    rows stacked into one feature vector per column, 1-D convolutions along the line (``context``: what a column
    knows of its neighbours), and per column the logits of the 10 digits and the CTC blank (index ``BLANK``).
    """

    SETTINGS = ("channels", "context", "activation", "dropout")  # the ModelConfig fields it is built from
    WIDTH_POOLS = LINE_WIDTH_POOLS
    CONTEXT_KERNEL = LINE_CONTEXT_KERNEL

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.activation not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {config.activation!r} ({', '.join(ACTIVATIONS)})")
        if len(config.channels) < self.WIDTH_POOLS or 2 ** len(config.channels) > LINE_HEIGHT:
            raise ConfigError(
                f"a line model needs {self.WIDTH_POOLS} to {LINE_HEIGHT.bit_length() - 1} conv blocks, "
                f"got {len(config.channels)}"
            )
        self.standardize = Standardize()
        blocks: list[nn.Module] = []
        width = 1
        for index, channels in enumerate(config.channels):
            pool = (2, 2) if index < self.WIDTH_POOLS else (2, 1)
            blocks += [
                nn.Conv2d(width, channels, 3, padding=1, bias=False),  # batch norm's shift stands in for a bias
                nn.BatchNorm2d(channels),
                ACTIVATIONS[config.activation](),
                nn.MaxPool2d(pool),
            ]
            width = channels
        self.blocks = nn.Sequential(*blocks)
        features = width * (LINE_HEIGHT >> len(config.channels))  # the rows left, stacked per column
        context: list[nn.Module] = []
        for channels in config.context:
            context += [
                nn.Conv1d(features, channels, self.CONTEXT_KERNEL, padding=self.CONTEXT_KERNEL // 2, bias=False),
                nn.BatchNorm1d(channels),
                ACTIVATIONS[config.activation](),
            ]
            features = channels
        self.context = nn.Sequential(*context)
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self.head = nn.Conv1d(features, BLANK + 1, 1)  # a linear layer per column

    def forward(self, x: Tensor) -> Tensor:  # (N, 1, 32, W) in [0, 1] -> (N, W // 4, 11) logits
        # Channels-last feature maps: on the CPU, max pooling of NCHW maps under bf16 took a third of a training
        # step; this layout made training of 32-64-96-128 blocks 1.4x faster (90 -> 127 lines/s, 2-core Xeon).
        x = x.to(memory_format=torch.channels_last)
        features = self.blocks(self.standardize(x))  # (N, C, h, W // 4)
        columns = features.flatten(1, 2)  # (N, C * h, W // 4)
        return self.head(self.dropout(self.context(columns))).transpose(1, 2)


MODELS: dict[str, type[nn.Module]] = {"mlp": MLP, "cnn": CNN, "line": LineModel}


def reads_lines(config: ModelConfig) -> bool:
    return config.name in LINE_MODELS


EXAMPLE_LINE_WIDTH = 64  # pixels: a line of about three digits, 16 columns, more than every context kernel sees


def example_input(lines: bool, batch: int, width: int = EXAMPLE_LINE_WIDTH) -> Tensor:
    """Random pixels in [0, 1] of the shape a model reads (for tests and export's traced example): a classifier's
    (batch, 1, 28, 28), or with ``lines`` (``reads_lines``) a line model's (batch, 1, 32, width)."""
    if lines:
        return torch.rand(batch, 1, LINE_HEIGHT, width)
    return torch.rand(batch, 1, IMAGE_SIZE, IMAGE_SIZE)


def build_model(config: ModelConfig) -> nn.Module:
    if config.name not in MODELS:
        raise ConfigError(f"unknown model {config.name!r} ({', '.join(MODELS)})")
    return MODELS[config.name](config)


def architecture(config: ModelConfig) -> dict:
    """The settings ``config.name``'s model is built from (what a model card or listing shows), by field name."""
    return {name: getattr(config, name) for name in MODELS[config.name].SETTINGS}


def output_columns(width: int) -> int:
    """Columns of logits the line model gives for an input ``width`` pixels wide."""
    return width // LINE_STRIDE


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())
