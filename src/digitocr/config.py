"""Every setting of digitocr in typed dataclasses, and the constants that training and reading share.

This module imports nothing from the package, so every other module may import it. A config is stored
in each model file and report as ``asdict(config)`` and rebuilt with ``TrainConfig.from_dict``; presets, flags,
tuning trials and the notebook change one with ``TrainConfig.with_settings`` (flat names, listed in ``SETTINGS``).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from digitocr.errors import ConfigError

# Statistics of the 60,000 MNIST training images, pixels scaled to [0, 1]. Training and reading both
# standardise with these (inside the model), so a user's picture is prepared exactly as training data was.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
IMAGE_SIZE = 28  # MNIST images are 28x28 pixels, one channel
DIGIT_BOX = 20  # MNIST digits were scaled to fit a 20x20 box inside the 28x28 image (LeCun et al.)
NUM_CLASSES = 10
CLASS_NAMES = tuple(str(digit) for digit in range(NUM_CLASSES))
# The line model (``models.LineModel``) reads a line of digits normalised to LINE_HEIGHT rows, width as it comes,
# and gives one column of class scores per LINE_STRIDE input columns: the 10 digits, then the CTC blank.
LINE_HEIGHT = 32
LINE_INK_HEIGHT = 24  # rows the tallest ink of a line fills once normalised: MNIST's 20 of 28, scaled to 32
LINE_SIDE_MARGIN = 4  # columns of paper left and right of a line's ink once normalised: room for CTC's first blank
LINE_STRIDE = 4  # input columns per output column: a digit 16-24 px wide gets 4-6 columns, room for CTC's blanks
LINE_WIDTH_POOLS = 2  # the line model's first conv blocks also halve the width: 2 ** 2 == LINE_STRIDE
LINE_CONTEXT_KERNEL = 5  # columns each of its 1-D convolutions sees: 20 input pixels, about one digit
# The steepest slope of a whole line (rows per column, about 3 degrees) the line model is trained on (data.lines);
# the reader shears a line straight only past it (reading.lines), so what it hands the model is what it learned.
LINE_MAX_TILT = 0.05
BLANK = NUM_CLASSES  # the CTC blank's class index, after the digits (so digit d keeps index d)
MAX_LINE_DIGITS = 12  # the longest number the line model is trained on
# Registry names of the models that read whole lines (CTC) rather than classify one digit: here, not in models.py,
# so the torch-free ONNX backend can tell a line model from the config stored in an exported file.
LINE_MODELS = frozenset({"line"})

DEFAULT_MODEL_PATH = "trained_model.pth"
DEVICES = ("auto", "cpu", "cuda", "mps")  # what --device takes everywhere, and cuda:N
DEVICE_NAMES = ", ".join(DEVICES) + ", or cuda:N"  # for error messages
# The choices of the other named settings: validate() checks them, the CLI offers them. training.py implements
# the optimisers and schedules; models.ACTIVATIONS holds the layers and tune.study.PRUNERS the pruners (a test
# keeps those registries and these names the same).
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("onecycle", "cosine", "constant")
PRECISIONS = ("auto", "fp32", "bf16")  # bf16: autocast where the hardware has native bf16 math
ACTIVATIONS = ("relu", "gelu", "silu", "tanh")
PRUNERS = ("median", "hyperband", "none")


def is_device_name(name: str) -> bool:
    return name in DEVICES or (name.startswith("cuda:") and name[5:].isdigit())


@dataclass
class ModelConfig:
    """Architecture of the classifier; ``name`` picks an entry of ``digitocr.models.MODELS``."""

    name: str = "mlp"
    hidden: tuple[int, ...] = (256,)  # MLP hidden layer widths, input to output
    activation: str = "relu"  # relu | gelu | silu | tanh
    dropout: float = 0.0  # probability, applied after each hidden activation
    batch_norm: bool = False  # BatchNorm1d after each hidden linear layer
    channels: tuple[int, ...] = (32, 64, 128)  # CNN and line model: conv widths per block (each halves the height)
    # Line model only: widths of the 1-D convolutions over its columns, after the 2-D blocks (each sees 5
    # columns, 20 input pixels: a digit and its neighbours' edges).
    context: tuple[int, ...] = (128, 128)

    def line_reach(self) -> int:
        """Input pixels right of a line model's output column that the column still depends on, rounded up to
        LINE_STRIDE: the paper a line needs after it for its last digits to be read as in a batch of longer lines
        (a convolution's own zero padding at the edge is not paper). Each 3x3 block reaches one pixel at its
        scale, and its width pooling one more; each context convolution LINE_CONTEXT_KERNEL // 2 columns."""
        reach = sum(
            2 ** min(block, LINE_WIDTH_POOLS) * (2 if block < LINE_WIDTH_POOLS else 1)
            for block in range(len(self.channels))
        )
        reach += len(self.context) * (LINE_CONTEXT_KERNEL // 2) * LINE_STRIDE
        return -(-reach // LINE_STRIDE) * LINE_STRIDE


@dataclass
class DataConfig:
    """Where MNIST lives and how the training set is split."""

    data_dir: str | None = None  # None: $DIGITOCR_DATA, else ~/.cache/digitocr
    val_size: int = 5000  # images held out of the 60,000 for early stopping and tuning


@dataclass
class AugmentConfig:
    """Training-time distortions of whole batches (digitocr.data.augment); all off by default."""

    affine: bool = False  # random rotation, translation, scale and shear per image
    rotate: float = 10.0  # degrees, drawn uniformly in [-rotate, rotate]
    translate: float = 0.1  # share of the image size, each axis
    scale: float = 0.1  # zoom drawn in [1 - scale, 1 + scale]
    shear: float = 10.0  # degrees, x axis
    elastic: bool = False  # smooth random displacement field (Simard et al. 2003)
    elastic_alpha: float = 1.0  # displacement strength in pixels (about the std of a pixel's shift)
    elastic_grid: int = 4  # random displacements on a grid x grid lattice, smoothly interpolated (fewer: smoother)
    # Share of images seen at low resolution, as in small scans and photos taken from afar: the 20-pixel digit
    # shrunk to between low_resolution_min and low_resolution_max pixels, enlarged back, strokes re-saturated.
    low_resolution: float = 0.0
    low_resolution_min: int = 6
    low_resolution_max: int = 14

    @property
    def enabled(self) -> bool:
        return self.affine or self.elastic or self.low_resolution > 0


@dataclass
class LinesConfig:
    """The lines of digits the line model is trained on, made on the fly from MNIST digits (``data.lines``)."""

    lines_per_epoch: int = 40_000  # training lines drawn per epoch (an epoch is a schedule unit here, not a pass)
    min_digits: int = 0  # digits per line drawn uniformly in [min_digits, max_digits]; 0: some lines are blank
    max_digits: int = MAX_LINE_DIGITS
    val_lines: int = 2_000  # validation lines from the validation split's digits, fixed per seed; pick the epoch
    test_lines: int = 5_000  # test lines from the test split's digits for the final report


@dataclass
class TrainConfig:
    """One training run: model, data, optimiser and schedule. Defaults are the tuned fast route to 98 %."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    lines: LinesConfig = field(default_factory=LinesConfig)  # the line model's training lines; others ignore it
    epochs: int = 4
    batch_size: int = 256
    optimizer: str = "sgd"  # sgd | adam | adamw
    lr: float = 0.2  # peak learning rate of the schedule
    momentum: float = 0.9  # SGD momentum (beta1 for Adam/AdamW)
    nesterov: bool = True  # SGD only
    weight_decay: float = 5e-4
    schedule: str = "onecycle"  # onecycle | cosine | constant
    warmup_fraction: float = 0.2  # share of all steps spent warming up (onecycle and cosine)
    label_smoothing: float = 0.1
    patience: int = 0  # early stopping: epochs without a better val accuracy; 0 disables
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | mps
    precision: str = "auto"  # auto | fp32 | bf16: bf16 autocast where the hardware has native bf16 math
    ema: float = 0.0  # decay of an exponential moving average of the weights (e.g. 0.999); 0 disables
    tta: bool = False  # test-time augmentation: report accuracy averaged over 1-pixel shifts of each image

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Rebuild a config from ``asdict`` output; unknown keys are an error, missing keys keep defaults."""
        values = dict(values)
        model = _build(ModelConfig, values.pop("model", {}), "model")
        data = _build(DataConfig, values.pop("data", {}), "data")
        augment = _build(AugmentConfig, values.pop("augment", {}), "augment")
        lines = _build(LinesConfig, values.pop("lines", {}), "lines")
        config = _build(cls, values, "train", model=model, data=data, augment=augment, lines=lines)
        config.validate()
        return config

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        try:
            values = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except (OSError, ValueError) as error:  # ValueError: bad JSON, or an integer too long to parse
            raise ConfigError(f"cannot read config file {path}: {error}") from None
        if not isinstance(values, dict):
            raise ConfigError(f"config file {path} must hold a JSON object")
        return cls.from_dict(values)

    def settings(self) -> dict[str, Any]:
        """Every setting by its flat name (``SETTINGS``): ``config.with_settings(**config.settings()) == config``."""
        return {
            name: getattr(self if place.section is None else getattr(self, place.section), place.field)
            for name, place in SETTINGS.items()
        }

    def with_settings(self, **settings: Any) -> TrainConfig:
        """A validated copy with some settings changed, by flat name (``SETTINGS``): each field by its own name,
        whatever its section, and the architecture as ``model``, as `digitocr train`'s flags spell them:
        ``config.with_settings(model="cnn", channels=(16, 32), affine=True, lr=0.05)``.

        An unknown name or a value of the wrong type is a ConfigError, as in ``from_dict`` (lists become tuples).
        """
        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)} (known: {', '.join(SETTINGS)})")
        top: dict[str, Any] = {}
        sections: dict[str, dict[str, Any]] = {}
        for name, value in settings.items():
            place = SETTINGS[name]
            value = _checked(value, place.type, f"setting {name!r}")
            (top if place.section is None else sections.setdefault(place.section, {}))[place.field] = value
        parts = {section: dataclasses.replace(getattr(self, section), **values) for section, values in sections.items()}
        config = dataclasses.replace(self, **top, **parts)
        config.validate()
        return config

    def validate(self) -> None:
        """Raise ConfigError for a value no run could use, before any data is loaded."""
        checks = [
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 1, "batch size must be at least 1"),
            (self.lr > 0, "learning rate must be positive"),
            (self.optimizer in OPTIMIZERS, f"unknown optimizer {self.optimizer!r} ({', '.join(OPTIMIZERS)})"),
            (self.schedule in SCHEDULES, f"unknown schedule {self.schedule!r} ({', '.join(SCHEDULES)})"),
            (0 <= self.warmup_fraction < 1, "warmup fraction must be in [0, 1)"),
            (0 <= self.label_smoothing < 1, "label smoothing must be in [0, 1)"),
            (self.weight_decay >= 0, "weight decay must not be negative"),
            (0 <= self.model.dropout < 1, "dropout must be in [0, 1)"),
            (all(width >= 1 for width in self.model.hidden), "hidden sizes must be positive"),
            (
                len(self.model.channels) >= 1 and all(width >= 1 for width in self.model.channels),
                "CNN channels must be positive",
            ),
            (all(width >= 1 for width in self.model.context), "line model context widths must be positive"),
            (self.lines.lines_per_epoch >= 1, "lines per epoch must be at least 1"),
            (
                # max 0 (blank lines only) would teach no digit, and the generator needs a digit position
                0 <= self.lines.min_digits <= self.lines.max_digits <= MAX_LINE_DIGITS and self.lines.max_digits >= 1,
                f"digits per line must satisfy 0 <= min <= max <= {MAX_LINE_DIGITS}, max at least 1",
            ),
            (min(self.lines.val_lines, self.lines.test_lines) >= 0, "validation and test lines must not be negative"),
            (0 <= self.ema < 1, "EMA decay must be in [0, 1)"),
            (
                min(
                    self.augment.rotate,
                    self.augment.translate,
                    self.augment.scale,
                    self.augment.shear,
                    self.augment.elastic_alpha,
                )
                >= 0
                and self.augment.elastic_grid >= 2,
                "augmentation strengths must not be negative",
            ),
            (0 <= self.augment.low_resolution <= 1, "the low-resolution share must be in [0, 1]"),
            (
                2 <= self.augment.low_resolution_min <= self.augment.low_resolution_max <= DIGIT_BOX,
                f"low-resolution sizes must satisfy 2 <= min <= max <= {DIGIT_BOX} "
                f"(pixels of the {DIGIT_BOX}-pixel digit box)",
            ),
            (0 <= self.data.val_size < 60000, "validation size must be in [0, 60000)"),
            (self.precision in PRECISIONS, f"unknown precision {self.precision!r} ({', '.join(PRECISIONS)})"),
            (is_device_name(self.device), f"unknown device {self.device!r} ({DEVICE_NAMES})"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


class Setting(NamedTuple):
    """Where a flat setting name points in a TrainConfig."""

    section: str | None  # "model", "data", "augment", "lines", or None for TrainConfig's own fields
    field: str
    type: Any  # the field's type, for _checked


def _flat_settings() -> dict[str, Setting]:
    """Flat name -> Setting, for every field of TrainConfig and of its sections (``model`` is ModelConfig.name)."""
    names: dict[str, Setting] = {}
    sections = {"model": ModelConfig, "data": DataConfig, "augment": AugmentConfig, "lines": LinesConfig}
    for section, kind in [*sections.items(), (None, TrainConfig)]:
        types_of = typing.get_type_hints(kind)
        for item in dataclasses.fields(kind):
            if section is None and item.name in sections:
                continue  # a section itself is not a setting
            name = "model" if (section, item.name) == ("model", "name") else item.name
            if name in names:  # flat names work only while no two sections share a field name
                raise TypeError(f"setting {name!r} is in two sections; give one of them another name")
            names[name] = Setting(section, item.name, types_of[item.name])
    return names


SETTINGS = _flat_settings()


@dataclass
class TuneConfig:
    """One hyperparameter search (``digitocr tune``). Defaults finish on 2 CPU cores within 30 minutes."""

    model: str = "mlp"  # which search space (digitocr.tune.MODEL_SPACES) and model to tune
    trials: int = 30  # finished trials (complete, pruned or failed) the study should reach, all workers together
    timeout: float | None = 1080.0  # seconds after which this process starts no new trial; None: no limit
    max_epochs: int = 10  # epochs of every trial; pruning stops weak ones earlier
    storage: str | None = None  # Optuna storage URL; None: sqlite:///<out>/study.db
    study: str | None = None  # study name; None: digitocr-<model>
    out: str = "tuning"  # folder for the study database, best_config.json, best_model.pth, CSV, plots
    pruner: str = "median"  # median | hyperband | none
    final: bool = True  # retrain the best configuration on all training images and report test accuracy once
    # seconds between a running trial's "still alive" marks in the storage; a trial silent for twice this long
    # (its worker was killed outright) is marked failed and runs again. A minute: a killed worker's trial runs
    # again after 2 minutes, at the cost of one small write a minute per worker.
    heartbeat: int = 60
    base: TrainConfig = field(default_factory=TrainConfig)  # what the search leaves alone: seed, data, device

    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{Path(self.out).resolve() / 'study.db'}"

    def study_name(self) -> str:
        return self.study or f"digitocr-{self.model}"

    def validate(self) -> None:
        checks = [
            (self.trials >= 1, "trials must be at least 1"),
            (self.max_epochs >= 1, "max epochs must be at least 1"),
            (self.timeout is None or self.timeout > 0, "timeout must be positive"),
            (self.pruner in PRUNERS, f"unknown pruner {self.pruner!r} ({', '.join(PRUNERS)})"),
            (self.heartbeat >= 1, "heartbeat must be at least 1 second"),
            (self.base.data.val_size >= 1, "tuning needs a validation split (val_size of at least 1)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        self.base.validate()


def _build(kind: type, values: Any, section: str, **fixed: Any) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"config section {section!r} must be an object")
    known = {f.name: f for f in dataclasses.fields(kind)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown {section} setting(s): {', '.join(unknown)}")
    field_types = typing.get_type_hints(kind)
    coerced = {
        name: _checked(value, field_types[name], f"{section} setting {name!r}") for name, value in values.items()
    }
    return kind(**coerced, **fixed)


def _checked(value: Any, expected: Any, name: str) -> Any:
    """``value`` as the field's type wants it, or a ConfigError naming the setting and the type (a JSON config
    is typed by hand: "two" epochs must fail here, not as a TypeError deep in training)."""
    options = typing.get_args(expected) if typing.get_origin(expected) in (typing.Union, types.UnionType) else ()
    if options:
        if value is None and type(None) in options:
            return None
        expected = next(option for option in options if option is not type(None))
    if typing.get_origin(expected) is tuple:
        # JSON has no tuples; fields typed as tuples get them back so configs compare equal.
        items = typing.get_args(expected)
        item_type = items[0]
        fits = isinstance(value, (list, tuple)) and (items[-1] is Ellipsis or len(value) == len(items))
        if fits and all(_is(item, item_type) for item in value):
            return tuple(float(item) if item_type is float else item for item in value)
        raise ConfigError(
            f"{name} must be a list of {_describe(item_type, plural=True)}"
            f"{'' if items[-1] is Ellipsis else f' of length {len(items)}'}, got {value!r}"
        )
    if not _is(value, expected):
        raise ConfigError(f"{name} must be {_describe(expected)}{' or null' if options else ''}, got {value!r}")
    return float(value) if expected is float else value


def _is(value: Any, expected: type) -> bool:
    if expected is float:  # a whole number is a number too (unless too large for a float); True is not
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        try:
            float(value)
        except OverflowError:
            return False
        return True
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _describe(expected: type, plural: bool = False) -> str:
    names = {
        int: ("a whole number", "whole numbers"),
        float: ("a number", "numbers"),
        bool: ("true or false", "true or false values"),
        str: ("a string", "strings"),
    }
    return names.get(expected, (expected.__name__,) * 2)[plural]


@dataclass
class ReadingConfig:
    """How pictures are read (``digitocr.reading``): safety limits, working size and rejection thresholds."""

    max_bytes: int = 40_000_000  # refuse encoded pictures larger than this
    max_pixels: int = 40_000_000  # refuse pictures with more pixels (decompression bombs), checked before decoding
    work_size: int = 384  # longest side of the working image the stages run on (pixels) for a classifier model
    # ... when a line model reads (``Recognizer``): a line is normalised from working pixels, and a number small in
    # a large photo or a comb in a wide form (its digits 8-11 working pixels tall at 384) keeps more of its strokes.
    # Measured 2026-12-03 with the shipped `lines` model on 200 pictures per category drawn from the validation
    # digits: 512 against 384 read combs 69.0 -> 74.5 %, a small number 88.5 -> 91.0 %, colour photos 88.0 -> 89.0 %,
    # touching 81.0 -> 82.0 %, no digits 95.0 -> 96.0 %, numbers 92.0 -> 91.0 %, ruled paper 91.0 -> 90.5 %, the
    # other categories alike; 640 and 768 moved no category a point past 512, for up to twice the time. The
    # classifier's rules were set at 384: at 512 the shipped `reader` read a small number better (83.5 -> 91.5 %)
    # but combs and ruled paper worse (18.0 -> 13.0 %, 78.5 -> 75.5 %), numbers 94.0 -> 92.5 %; it keeps 384.
    line_work_size: int = 512
    min_work_size: int = IMAGE_SIZE  # tiny pictures are enlarged to a shortest side of at least this (MNIST's)
    min_contrast: float = 0.10  # ink must differ from paper by this fraction of full range, else "no ink"
    max_ink_fraction: float = 0.45  # more of the picture than this is "ink": a photo or texture, not digits
    min_confidence: float = 0.35  # a digit read with less probability is rejected as not a digit
    ink_mass_range: tuple[float, float] = (0.03, 0.33)  # mean pixel of 99.8 % of MNIST digits lies in (0.045, 0.28)
    max_stroke: float = 6.0  # stroke width in the 28x28 image (pixels): 99.99 % of MNIST digits stay under 5.9
    min_height: int = 10  # rows of ink in the 28x28 image: 99.99 % of MNIST digits have at least 10
