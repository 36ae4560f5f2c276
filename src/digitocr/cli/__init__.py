"""The `digitocr` command: argparse subcommands, each a thin layer (flags -> config -> one library call -> print).

Each subcommand lives in its own module with ``register(subparsers)``; add a new one to ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import sys

from digitocr import __version__
from digitocr.cli import data_cmd, evaluate_cmd, export_cmd, models_cmd, predict_cmd, serve_cmd, train_cmd, tune_cmd
from digitocr.errors import DigitOCRError, TrainingInterrupted

COMMANDS = [data_cmd, train_cmd, evaluate_cmd, predict_cmd, models_cmd, tune_cmd, export_cmd, serve_cmd]
# Installed by the `train` extra, absent from a runtime-only install.
TRAIN_MODULES = {"torch", "torchvision", "sklearn", "matplotlib", "scipy", "tqdm"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="digitocr",
        description="Learn to read handwritten digits from MNIST, then read them in real pictures.",
        epilog="Run `digitocr COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"digitocr {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what was asked, for a command to continue it
    try:
        return args.run(args) or 0
    except TrainingInterrupted as interrupted:
        print(f"digitocr: {interrupted}", file=sys.stderr)
        return 130
    except DigitOCRError as error:
        print(f"digitocr: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("digitocr: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as error:
        # A runtime-only install (digitocr[runtime]) has no PyTorch; say which extra a command needs.
        if (error.name or "").split(".")[0] not in TRAIN_MODULES:
            raise
        print(
            f"digitocr: error: `digitocr {args.command}` needs {error.name}, which is not installed "
            "(pip install 'digitocr[train]')",
            file=sys.stderr,
        )
        return 1
