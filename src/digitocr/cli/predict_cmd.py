"""`digitocr predict IMAGE...`: read the digits in pictures, one line (or one JSON object) per picture."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from digitocr.cli.common import info, positive_int
from digitocr.config import DEFAULT_MODEL_PATH
from digitocr.errors import ImageError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="read the digits in pictures (photos, scans, canvas drawings)",
        description="Read the digits in each picture, left to right. A picture that cannot be read gets an "
        "error line and the others are still read; the exit code is 1 if any failed.",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG, BMP, GIF, WebP or TIFF files")
    parser.add_argument("--model", default=DEFAULT_MODEL_PATH, help=f"model file (default {DEFAULT_MODEL_PATH})")
    parser.add_argument("--device", default=None, help="cpu | cuda | mps (default cpu)")
    parser.add_argument("--backend", default="torch", choices=("torch", "onnx"), help="what runs the model")
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="processes reading the pictures, one core each (default 1); for hundreds of "
        "pictures, up to the number of cores: each worker starts in about two seconds",
    )
    parser.add_argument(
        "--debug-dir", metavar="DIR", help="save the 28x28 image the model saw for each digit as DIR/<picture>_<n>.png"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per picture: {"file", "text", "digits"} or {"file", "error"}',
    )
    parser.set_defaults(run=run)


CHUNK = 256  # pictures read together: one batched pass through the stages and the model, then printed


def run(args: argparse.Namespace) -> int:
    from digitocr.reading import Recognizer
    from digitocr.reading.parallel import limit_threads

    # With workers this process reads a share too: one thread per process, one process per core.
    restore_threads = limit_threads(1) if args.workers > 1 else (lambda: None)
    failed = 0
    try:
        with Recognizer(args.model, device=args.device, backend=args.backend, workers=args.workers) as recognizer:
            for start in range(0, len(args.images), CHUNK * args.workers):
                names = args.images[start : start + CHUNK * args.workers]
                for name, result in zip(names, recognizer.read_each(names)):
                    if isinstance(result, ImageError):
                        failed += 1
                        report_error(name, result, args.json)
                    else:
                        report(name, result, args)
    finally:
        restore_threads()
    return 1 if failed else 0


def report_error(name: str, error: ImageError, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"file": name, "error": str(error)}))
    else:
        info(f"{name}: error: {error}")


def report(name: str, result, args: argparse.Namespace) -> None:
    if args.debug_dir:
        save_digit_images(result, Path(args.debug_dir), Path(name).stem)
    if args.json:
        print(json.dumps({"file": name, **result.to_dict()}), flush=True)
    else:
        confidences = " ".join(f"{d.digit}:{d.confidence:.2f}" for d in result.digits)
        print(f"{name}: {result.text or '(no digits)'}" + (f"  [{confidences}]" if confidences else ""), flush=True)


def save_digit_images(result, folder: Path, stem: str) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for number, digit in enumerate(result.digits):
        Image.fromarray((digit.image * 255).round().astype("uint8")).save(folder / f"{stem}_{number}_{digit.digit}.png")
