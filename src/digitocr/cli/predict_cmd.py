"""`digitocr predict IMAGE|DIR...`: read the digits in pictures, one line (or one JSON object) per picture, or one
CSV row per picture into a file that an interrupted run continues (``--csv OUT --resume``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
import time
from pathlib import Path

from digitocr.catalog import BACKENDS, CATALOG, DEFAULT_READER
from digitocr.cli.common import info, positive_int
from digitocr.cli.pictures import PICTURE_SUFFIXES, find_pictures
from digitocr.config import DEFAULT_MODEL_PATH
from digitocr.errors import ConfigError, ImageError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="read the digits in pictures (photos, scans, canvas drawings)",
        description="Read the digits in each picture, left to right, line by line from the top. One output line "
        "per picture: 'photo.jpg: 2024 / 15  [2:0.91 0:0.88 2:0.95 4:0.90 / 1:0.97 5:0.89]' (the picture's lines of "
        "digits separated by ' / ', each digit's confidence in brackets, grouped the same way). A picture that cannot "
        "be read gets an error line (or row) and the others are still read; the exit code is 1 if any failed.",
    )
    parser.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE|DIR",
        help="PNG, JPEG, BMP, GIF, WebP or TIFF files; a folder: the pictures in it and its subfolders",
    )
    parser.add_argument(
        "--glob",
        metavar="PATTERN",
        help="in folders, read the files matching PATTERN (case-insensitive, matched from the right against the "
        f"path below the folder: '*.png', 'scans/*.jpg'); default: {' '.join('*' + s for s in PICTURE_SUFFIXES)}",
    )
    parser.add_argument(
        "--model",
        default=None,
        help=f"a model file (.pth, or .onnx; e.g. {DEFAULT_MODEL_PATH} from `digitocr train`) or a shipped model's "
        f"name ({', '.join(CATALOG)}; `digitocr models` lists them); default: the shipped {DEFAULT_READER}",
    )
    parser.add_argument("--device", default=None, help="cpu | cuda | mps (default cpu)")
    parser.add_argument(
        "--backend",
        default="auto",
        choices=BACKENDS,
        help="what runs the model (default auto: onnxruntime for .onnx files and where PyTorch is not installed)",
    )
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
    output = parser.add_mutually_exclusive_group()
    output.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per picture: {"file", "text", "digits", "lines"} or {"file", "error"}; "text" is the '
        'lines\' digits joined by "\\n", each of "lines" has its "text", "box" and "digits"',
    )
    output.add_argument(
        "--csv",
        metavar="OUT",
        help="write one row per picture to the CSV file OUT (file,text,confidences,error; a text of several lines "
        "holds them joined by newlines, quoted as CSV quotes them; the confidences one per digit, space-separated) as "
        "they are read, and print only a summary line",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the --csv OUT an interrupted run left: read only the pictures not in it yet, append them",
    )
    parser.set_defaults(run=run)


CHUNK = 256  # pictures read together: one batched pass through the stages and the model, then printed or written


def run(args: argparse.Namespace) -> int:
    from digitocr.cli.results_csv import ResultsTable
    from digitocr.reading import Recognizer
    from digitocr.reading.parallel import limit_threads

    if args.resume and not args.csv:
        raise ConfigError("--resume continues the file of --csv OUT; give --csv OUT too")
    table = ResultsTable(args.csv, resume=args.resume) if args.csv else None  # refuses an OUT it must not touch
    # With workers this process reads a share too: one thread per process, one process per core.
    restore_threads = limit_threads(1) if args.workers > 1 else (lambda: None)
    try:
        with Recognizer(args.model, device=args.device, backend=args.backend, workers=args.workers) as recognizer:
            names = find_pictures(args.images, args.glob)
            if table is None:
                return 1 if read_all(recognizer, names, args) else 0
            return read_into(table, recognizer, names, args)
    finally:
        restore_threads()


def read_all(recognizer, names: list[str], args: argparse.Namespace, table=None) -> int:
    """Read ``names`` chunk by chunk, printing each picture's line (or writing its row to ``table``) -> how many
    failed. KeyboardInterrupt passes through, once the rows read so far are written."""
    failed = 0
    bar = progress_bar(len(names))
    try:
        for start in range(0, len(names), CHUNK * args.workers):
            chunk = names[start : start + CHUNK * args.workers]
            answers = recognizer.read_each(chunk)
            failed += sum(isinstance(answer, ImageError) for answer in answers)
            if args.debug_dir:
                for name, answer in zip(chunk, answers):
                    if not isinstance(answer, ImageError):
                        save_digit_images(answer, Path(args.debug_dir), Path(name).stem)
            if table is not None:
                table.write(chunk, answers)
            else:
                # Printed lines and the bar share the terminal: the bar steps aside while they are printed.
                with bar.external_write_mode() if bar else contextlib.nullcontext():
                    for name, answer in zip(chunk, answers):
                        report(name, answer, args.json)
            if bar:
                bar.update(len(chunk))
    finally:
        if bar:
            bar.close()
    return failed


def read_into(table, recognizer, names: list[str], args: argparse.Namespace) -> int:
    """``--csv``: read the pictures not in OUT yet into it, then print one summary line (or, on Ctrl-C, how far
    it got and the command that continues it)."""
    started = time.perf_counter()
    todo = [name for name in names if name not in table.done]
    table.open()
    try:
        failed = read_all(recognizer, todo, args, table)
    except KeyboardInterrupt:
        again = shlex.join(["digitocr", *args.argv, *([] if args.resume else ["--resume"])])
        info(
            f"digitocr: interrupted: {table.written:,} of {count(len(todo), 'picture')} read into {table.path}; "
            f"continue with: {again}"
        )
        return 130
    finally:
        table.close()
    already = f"; {len(names) - len(todo):,} were in it already" if len(todo) < len(names) else ""
    seconds = time.perf_counter() - started
    print(
        f"read {count(len(todo), 'picture')} ({count(failed, 'error')}) into {table.path} in {seconds:.1f} s{already}"
    )
    return 1 if failed else 0


def count(number: int, thing: str) -> str:
    return f"{number:,} {thing}" + ("" if number == 1 else "s")


SCREENFUL_FALLBACK = 24  # lines, where the terminal does not say (a fresh pty reports 0): a classic terminal's


def progress_bar(total: int):
    """A tqdm bar on stderr when there are more pictures than the terminal has lines (fewer scroll by as they are
    printed); None when stderr is not a terminal (a bar in a log is noise) or tqdm is not installed (it comes with
    the train extra, not the runtime one)."""
    if not sys.stderr.isatty() or total <= screen_lines():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="reading", file=sys.stderr, unit="picture", leave=True, dynamic_ncols=True)


def screen_lines() -> int:
    """The lines of the terminal on stderr, where the bar goes (shutil.get_terminal_size asks stdout's)."""
    try:
        return os.get_terminal_size(sys.stderr.fileno()).lines or SCREENFUL_FALLBACK
    except (OSError, ValueError):
        return SCREENFUL_FALLBACK


def report(name: str, answer, as_json: bool) -> None:
    if isinstance(answer, ImageError):
        if as_json:
            print(json.dumps({"file": name, "error": str(answer)}))
        else:
            info(f"{name}: error: {answer}")
    elif as_json:
        print(json.dumps({"file": name, **answer.to_dict()}), flush=True)
    else:
        print(f"{name}: {plain_text(answer)}", flush=True)


LINE_SEPARATOR = " / "  # between a picture's lines in plain output: one output line per picture, easy to grep


def plain_text(answer) -> str:
    """A reading as ``predict`` prints it: '2024 / 15  [2:0.91 0:0.88 2:0.95 4:0.90 / 1:0.97 5:0.89]'."""
    if not answer.lines:
        return "(no digits)"
    confidences = LINE_SEPARATOR.join(
        " ".join(f"{d.digit}:{d.confidence:.2f}" for d in line.digits) for line in answer.lines
    )
    return f"{LINE_SEPARATOR.join(line.text for line in answer.lines)}  [{confidences}]"


def save_digit_images(result, folder: Path, stem: str) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for number, digit in enumerate(result.digits):
        Image.fromarray((digit.image * 255).round().astype("uint8")).save(folder / f"{stem}_{number}_{digit.digit}.png")
