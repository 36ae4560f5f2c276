"""`digitocr train`: flags -> TrainConfig -> digitocr.train() -> a summary (or JSON) on stdout."""

from __future__ import annotations

import argparse
import functools

from digitocr.cli.common import (
    add_data_dir,
    add_json,
    add_report_dir,
    fraction,
    info,
    int_list,
    non_negative_int,
    positive_float,
    positive_int,
    print_json,
    report_written,
    unit_fraction,
)
from digitocr.config import (
    ACTIVATIONS,
    DEFAULT_MODEL_PATH,
    DEVICES,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULES,
    SETTINGS,
    TrainConfig,
)
from digitocr.errors import ConfigError
from digitocr.presets import DEFAULT_PRESET, PRESETS, describe_presets, preset_config, preset_names


def default_of(dest: str, *models: str) -> str:
    """A flag's default as each model's default preset sets it (the CNN's epochs, batch and lr are not the MLP's),
    for ``models`` (default: all); flags after a --preset override that preset's value instead."""
    shown = {}
    for model in models or PRESETS:
        value = _default_preset(model).settings()[dest]
        shown[model] = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
    if len(set(shown.values())) == 1:
        return f"default {next(iter(shown.values()))}"
    return "default " + ", ".join(f"{model} {value}" for model, value in shown.items())


@functools.cache
def _default_preset(model: str) -> TrainConfig:
    """Built once per model: every `digitocr` command builds the train parser, and its help asks for ~10 defaults."""
    return preset_config(model, DEFAULT_PRESET)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model on MNIST and save it",
        description="Train a classifier (or the line model, which reads whole lines of digits) on MNIST "
        "(validation split for model selection), report its test accuracy once (for the line model: lines read "
        "exactly), and save it. Settings: --preset (or --config FILE) < flags. The defaults shown "
        f"are each model's {DEFAULT_PRESET} preset's; another preset sets its own.",
        epilog="presets (--model M --preset P):\n" + describe_presets(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    model = parser.add_argument_group("model")
    model.add_argument("--model", choices=list(PRESETS), help=f"architecture (default {TrainConfig().model.name})")
    model.add_argument(
        "--preset",
        choices=preset_names(),
        help=f"named settings for the model, listed below (default {DEFAULT_PRESET})",
    )
    model.add_argument(
        "--hidden", type=int_list, metavar="W1,W2", help=f"MLP hidden widths ({default_of('hidden', 'mlp')})"
    )
    model.add_argument("--activation", choices=ACTIVATIONS)
    model.add_argument("--dropout", type=fraction, help="dropout after each hidden layer")
    model.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=None)
    model.add_argument(
        "--channels", type=int_list, metavar="C1,C2", help=f"CNN block widths ({default_of('channels', 'cnn')})"
    )
    model.add_argument(
        "--context",
        type=int_list,
        metavar="W1,W2",
        help=f"line model: widths of its 1-D convolutions along the line ({default_of('context', 'line')})",
    )
    lines = parser.add_argument_group("line model: the lines of MNIST digits it is trained on, drawn on the fly")
    lines.add_argument(
        "--lines-per-epoch",
        type=positive_int,
        help=f"training lines per epoch ({default_of('lines_per_epoch', 'line')})",
    )
    lines.add_argument("--min-digits", type=non_negative_int, help="fewest digits in a line (0: some are blank)")
    lines.add_argument("--max-digits", type=positive_int, help="most digits in a line (at most 12)")
    lines.add_argument("--val-lines", type=non_negative_int, help="validation lines, from the validation digits")
    lines.add_argument("--test-lines", type=non_negative_int, help="test lines for the final figure")
    regular = parser.add_argument_group("augmentation and averaging")
    regular.add_argument(
        "--affine",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random rotation, shift, scale and shear of training batches",
    )
    regular.add_argument(
        "--elastic",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random elastic distortion of training batches",
    )
    regular.add_argument(
        "--low-resolution",
        type=unit_fraction,
        metavar="SHARE",
        help="share of training images also seen at 6-14 pixels per digit, as in small scans",
    )
    regular.add_argument("--ema", type=fraction, metavar="DECAY", help="keep an EMA of the weights (0: off)")
    regular.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="report accuracy averaged over 1-pixel shifts of each test image",
    )
    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--epochs", type=positive_int, help=f"({default_of('epochs')})")
    optim.add_argument("--batch-size", type=positive_int, help=f"({default_of('batch_size')})")
    optim.add_argument("--lr", type=positive_float, help=f"peak learning rate ({default_of('lr')})")
    optim.add_argument("--optimizer", choices=OPTIMIZERS, help=f"({default_of('optimizer')})")
    optim.add_argument("--momentum", type=fraction, help="SGD momentum / Adam beta1")
    optim.add_argument("--weight-decay", type=float)
    optim.add_argument(
        "--schedule",
        choices=SCHEDULES,
        help=f"learning-rate schedule ({default_of('schedule')})",
    )
    optim.add_argument("--warmup-fraction", type=fraction, help="share of steps spent warming up")
    optim.add_argument("--label-smoothing", type=fraction)
    optim.add_argument(
        "--patience",
        type=non_negative_int,
        help="early stopping after N epochs without a better validation accuracy (0: off)",
    )
    run_group = parser.add_argument_group("run")
    add_data_dir(run_group)
    run_group.add_argument("--val-size", type=non_negative_int, help="validation images held out (default 5000)")
    run_group.add_argument("--seed", type=int, help="seed of initialisation, split and batch order (default 0)")
    run_group.add_argument("--device", help=f"{' | '.join(DEVICES)} (default {TrainConfig().device})")
    run_group.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="bf16 autocast for speed; auto uses it where the hardware computes bf16 natively",
    )
    run_group.add_argument(
        "--config",
        metavar="FILE.json",
        help="settings from a JSON file (as stored by `digitocr tune`); flags override it",
    )
    run_group.add_argument(
        "--out",
        metavar="PATH",
        help=f"where to save the model (default {DEFAULT_MODEL_PATH}; "
        "with --resume: where the interrupted run was to save it)",
    )
    run_group.add_argument(
        "--resume",
        metavar="CHECKPOINT",
        help="continue an interrupted run from its checkpoint (its own settings and model path are used)",
    )
    run_group.add_argument("--quiet", action="store_true", help="no progress bars")
    add_report_dir(run_group)
    add_json(run_group)
    parser.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The preset (or the --config file), then every flag the user actually gave (a flag's destination is the
    flat name of the setting it sets, as in ``TrainConfig.with_settings``)."""
    if args.config and args.preset:
        raise ConfigError("give --preset or --config, not both")
    if args.config:
        config = TrainConfig.from_json(args.config)
    else:
        config = preset_config(args.model or TrainConfig().model.name, args.preset or DEFAULT_PRESET)
    given = {name: getattr(args, name) for name in SETTINGS if getattr(args, name, None) is not None}
    return config.with_settings(**given)


def run(args: argparse.Namespace) -> int:
    from digitocr import distributed
    from digitocr.cli.progress import EpochProgressBars
    from digitocr.models import reads_lines
    from digitocr.pipeline import train
    from digitocr.training import read_checkpoint

    out = args.out or DEFAULT_MODEL_PATH
    if args.resume:
        checkpoint = read_checkpoint(args.resume)
        config = TrainConfig.from_dict(checkpoint["config"])
        out = args.out or checkpoint.get("model_path") or out
        info(f"resuming from {args.resume} with its own settings; the model goes to {out}")
    else:
        config = config_from_args(args)
    # Under torchrun every rank runs this; rank 0 alone shows progress and prints the result.
    unit = "lines" if reads_lines(config.model) else "img"
    callbacks = None if args.quiet or not distributed.is_main() else EpochProgressBars(config.epochs, unit=unit)
    try:
        result = train(config, out=out, callbacks=callbacks, resume=args.resume, log=info)
    finally:
        if callbacks is not None:
            callbacks.close()  # an interrupted epoch's bar ends its line before the message below it
    if not distributed.is_main():
        return 0
    if args.report_dir:
        from digitocr.reports import write_train_report

        report_written(write_train_report(args.report_dir, result))
    if args.json:
        print_json(result.summary())
    else:
        print(
            f"test accuracy {result.test_accuracy:.2%} (validation {result.val_accuracy:.2%}) after "
            f"{len(result.history.epochs)} epochs in {result.train_seconds:.1f} s; model saved to {result.model_path}"
        )
    return 0
