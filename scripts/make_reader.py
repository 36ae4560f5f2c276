"""`make reader`: retrain the shipped reader from scratch with its recorded recipe and write it where it ships.

    .venv/bin/python scripts/make_reader.py [--name reader|lines] [--count 300]

Trains the named model's recipe (seed 0) on MNIST, exports its ONNX copy, measures it on MNIST's test set and on
every category of benchmarks/reading_accuracy.py, and writes src/digitocr/shipped/NAME.{pth,onnx,json} and
NAME.MODEL_CARD.md. The files are written only at the end, each atomically: an interrupted run leaves the shipped
model as it was. The card records what a test checks the shipped files against (their digests, the figures).
``--trained FILE`` ships a model already trained by the recipe (its config is checked) instead of training one.
``--refigure`` trains nothing and writes no model: it measures the shipped model again with today's reader (after a
change to how pictures are read) and rewrites only its card's reading figures and when and where they were measured.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from digitocr import __version__
from digitocr.catalog import CATALOG, DEFAULT_READER, LINE_READER, SHIPPED_DIR, test_measure
from digitocr.export import export_model
from digitocr.files import write_atomically
from digitocr.machine import cpu_name
from digitocr.modelfile import CONTENT_DIGEST, read_model_file
from digitocr.pipeline import train
from digitocr.presets import preset_config

ROOT = Path(__file__).resolve().parent.parent
# The recipe of each shipped model: model and preset names, as `digitocr train --model M --preset P` takes them.
RECIPES = {DEFAULT_READER: ("cnn", "reader"), LINE_READER: ("line", "reader")}


def progress(message: str) -> None:
    print(message, file=sys.stderr)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def code_version() -> str:
    """The commit the model was made from (``+dirty`` with uncommitted changes), or the package version."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        # The shipped files themselves are left out: writing one card must not mark the next one's code as dirty.
        changed = ["git", "status", "--porcelain", "--", "src", f":!{SHIPPED_DIR.relative_to(ROOT)}"]
        dirty = subprocess.run(changed, cwd=ROOT, capture_output=True, text=True)
        return f"{__version__} {commit}{'+dirty' if dirty.stdout.strip() else ''}"
    except (OSError, subprocess.CalledProcessError):
        return __version__


def reading_figures(model: Path, count: int) -> dict[str, float]:
    """benchmarks/reading_accuracy.py's exact-reading share per category, for this model."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "figures.json"
        command = [sys.executable, str(ROOT / "benchmarks" / "reading_accuracy.py"), "--model", str(model)]
        subprocess.run([*command, "--count", str(count), "--json", str(out)], check=True)
        return json.loads(out.read_text())["digitocr"]


def measured_where() -> dict[str, str]:
    """When, with which code and on which machine reading figures were measured (the reader changes more often than
    the models it reads with)."""
    return {
        "date": datetime.date.today().isoformat(),
        "code": code_version(),
        "machine": f"{cpu_name()}, Python {platform.python_version()}",
    }


def refigure(name: str, count: int) -> None:
    """The shipped model ``name`` measured again on every reading category; its card's figures rewritten."""
    shipped = CATALOG[name]
    card = shipped.card()
    before = card["figures"]["reading"]
    figures = reading_figures(shipped.torch_path, count)
    card["figures"].update(reading=figures, reading_pictures_per_category=count, reading_measured=measured_where())
    write_atomically(shipped.card_path, lambda temporary: temporary.write_text(json.dumps(card, indent=2) + "\n"))
    print(f"{name}: reading figures measured again, {count} pictures per category; written to {shipped.card_path}")
    for category, value in figures.items():
        was = f" (was {before[category]:.1%})" if category in before else " (new)"
        print(f"  {category}: {value:.1%}{was}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default=DEFAULT_READER, choices=sorted(RECIPES))
    parser.add_argument("--count", type=int, default=300, help="pictures per reading category (default 300)")
    parser.add_argument(
        "--trained",
        metavar="FILE",
        help="ship this model file instead of training (it must have been trained by the recipe: same config)",
    )
    parser.add_argument(
        "--refigure",
        action="store_true",
        help="measure the shipped model again with today's reader and rewrite only its card's reading figures",
    )
    args = parser.parse_args()
    if args.refigure:
        if args.trained:
            raise SystemExit("--refigure measures the shipped model: it takes no --trained FILE")
        refigure(args.name, args.count)
        return
    shipped = CATALOG[args.name]
    model_name, preset = RECIPES[args.name]
    recipe = preset_config(model_name, preset)

    with tempfile.TemporaryDirectory() as scratch:
        made = Path(scratch) / shipped.torch_path.name
        if args.trained:
            if read_model_file(args.trained).config != recipe:
                raise SystemExit(f"{args.trained} was not trained by the recipe of {args.name!r}: train it again")
            shutil.copyfile(args.trained, made)
        else:
            train(recipe, out=made, log=progress)
        model_file = read_model_file(made)
        stored = model_file.metadata["metrics"]
        exported = export_model(made, "onnx", out=made.with_suffix(".onnx"), log=progress)
        figures = reading_figures(made, args.count)
        card = {
            "name": args.name,
            "description": shipped.description,
            "kind": model_name,
            "recipe": {"command": f"digitocr train --model {model_name} --preset {preset}", "config": recipe.to_dict()},
            "data_sha256": model_file.metadata["data_sha256"],
            "code": code_version(),  # of this script's run; the versions the model was trained with are below
            "trained_with": model_file.metadata.get("versions"),
            "trained_here": not args.trained,  # False: --trained FILE, a model trained by the recipe beforehand
            "made": datetime.date.today().isoformat(),
            "machine": f"{cpu_name()}, Python {platform.python_version()}",
            "train_seconds": round(stored["train_seconds"], 1),
            "files": {
                shipped.torch_path.name: {
                    "bytes": made.stat().st_size,
                    CONTENT_DIGEST: model_file.metadata[CONTENT_DIGEST],
                },
                shipped.onnx_path.name: {"bytes": exported.path.stat().st_size, "sha256": sha256_of(exported.path)},
            },
            "figures": {
                "test_accuracy": stored["test_accuracy"],  # of what: test_measure
                "test_measure": test_measure(model_name),
                "reading": figures,
                "reading_pictures_per_category": args.count,
                "reading_measured": measured_where(),
            },
        }
        SHIPPED_DIR.mkdir(parents=True, exist_ok=True)
        for source, target in (
            (made, shipped.torch_path),
            (exported.path, shipped.onnx_path),
            (exported.model_card, shipped.model_card_path),
        ):
            write_atomically(target, lambda temporary, data=source.read_bytes(): temporary.write_bytes(data))
        write_atomically(shipped.card_path, lambda temporary: temporary.write_text(json.dumps(card, indent=2) + "\n"))
    print(
        f"{args.name}: {stored['test_accuracy']:.2%} of {card['figures']['test_measure']}, "
        f"trained in {stored['train_seconds']:.0f} s; "
        f"written to {SHIPPED_DIR.relative_to(ROOT)}"
    )
    for category, value in figures.items():
        print(f"  {category}: {value:.1%}")


if __name__ == "__main__":
    main()
