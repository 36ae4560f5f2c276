"""`digitocr models`: the models that ship with the package, with what each was measured to read."""

from __future__ import annotations

import argparse

from digitocr.catalog import CATALOG, DEFAULT_READER
from digitocr.cli.common import add_json, print_json

# The reading figures a listing shows, by benchmarks/reading_accuracy.py's category names, in its order.
SHOWN_CATEGORIES = {
    "photo": "photos",
    "canvas": "canvases",
    "number": "numbers",
    "touching": "touching",
    "comb": "combs",
    "lines": "several lines",
    "uci": "UCI",
}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the models that ship with digitocr (what --model NAME takes)",
        description="The models that ship inside the package: their name (for --model), kind, size on disk, and "
        f"the figures measured when they were made (`make reader`) or measured again since "
        f"(`scripts/make_reader.py --refigure`). With no --model, predict and serve read with "
        f"{DEFAULT_READER!r}.",
    )
    add_json(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    cards = {name: shipped.card() for name, shipped in CATALOG.items()}
    if args.json:
        print_json(cards)
        return 0
    for name, card in cards.items():
        size = sum(file["bytes"] for file in card["files"].values()) / 1e6
        figures = card["figures"]
        reading = ", ".join(
            f"{shown} {figures['reading'][category]:.1%}"
            for category, shown in SHOWN_CATEGORIES.items()
            if category in figures["reading"]
        )
        default = " (default)" if name == DEFAULT_READER else ""
        print(f"{name}{default}: {card['kind']}, {size:.1f} MB ({', '.join(card['files'])}), made {card['made']}")
        print(f"  {card['description']}")
        # Cards made before reading figures carried their own date were measured when the model was made.
        measured = figures.get("reading_measured", {}).get("date", card["made"])
        print(f"  {figures['test_accuracy']:.2%} of {figures['test_measure']}")
        print(f"  pictures read exactly (measured {measured}): {reading}")
        print(f"  recipe: {card['recipe']['command']}")
    return 0
