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


def _number_flag(parse, kind: str, ok, requirement: str):
    """An argparse ``type=`` that parses with ``parse`` and explains both kinds of mistake in one line."""

    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {requirement}, got {text}")
        return value

    return convert


positive_int = _number_flag(int, "a whole number", lambda v: v >= 1, "a whole number of at least 1")
non_negative_int = _number_flag(int, "a whole number", lambda v: v >= 0, "a whole number of at least 0")
positive_float = _number_flag(float, "a number", lambda v: v > 0 and math.isfinite(v), "a positive number")
fraction = _number_flag(float, "a number", lambda v: 0 <= v < 1, "a number in [0, 1)")
unit_fraction = _number_flag(float, "a number", lambda v: 0 <= v <= 1, "a number in [0, 1]")
port_number = _number_flag(int, "a whole number", lambda v: 1 <= v <= 65535, "a port number in 1-65535")


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
    parser.add_argument(
        "--data-dir", metavar="DIR", help="MNIST folder (default: $DIGITOCR_DATA, else ~/.cache/digitocr)"
    )


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")


def add_report_dir(parser) -> None:
    parser.add_argument(
        "--report-dir",
        metavar="DIR",
        help="also write PNG figures (samples, class counts, "
        "training curves, confusion matrix, mistakes) and metrics.json into DIR",
    )


def report_written(paths: dict) -> None:
    """One line on stderr, so a --json line stays the last line of stdout."""
    folder = next(iter(paths.values())).parent
    info(f"report: {', '.join(sorted(path.name for path in paths.values()))} in {folder}")
