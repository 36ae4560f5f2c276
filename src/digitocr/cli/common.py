"""What several subcommands share: output helpers and flag types."""

from __future__ import annotations

import argparse
import json
import math
import sys

from digitocr.jsonable import jsonable


def print_json(value: dict) -> None:
    """One JSON object on one line: the last line of stdout, for scripts."""
    print(json.dumps(jsonable(value), separators=(",", ":")))


def info(message: str) -> None:
    print(message, file=sys.stderr)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 0, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return value


def int_list(text: str) -> tuple[int, ...]:
    """'512,256' -> (512, 256); the hidden layer widths of an MLP."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers like 512,256, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive widths like 512,256, got {text!r}")
    return values


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", metavar="DIR",
                        help="MNIST folder (default: $DIGITOCR_DATA, else ~/.cache/digitocr)")


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")


def add_report_dir(parser) -> None:
    parser.add_argument("--report-dir", metavar="DIR", help="also write PNG figures (samples, class counts, "
                        "training curves, confusion matrix, mistakes) and metrics.json into DIR")


def report_written(paths: dict) -> None:
    """One line on stderr, so a --json line stays the last line of stdout."""
    folder = next(iter(paths.values())).parent
    info(f"report: {', '.join(sorted(path.name for path in paths.values()))} in {folder}")
