"""`digitocr serve`: the drawing page and the REST API under uvicorn, on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import argparse

from digitocr.catalog import CATALOG, DEFAULT_READER, resolve_model
from digitocr.cli.common import info, port_number
from digitocr.config import DEFAULT_MODEL_PATH
from digitocr.errors import ModelFileError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the drawing page and the REST API",
        description="A web page to draw digits (or drop a photo) and have them read, and POST /api/predict "
        "for programs. OpenAPI docs at /docs.",
    )
    parser.add_argument(
        "--model",
        default=None,
        metavar="MODEL",
        help=f"a model file written by `digitocr train` (e.g. {DEFAULT_MODEL_PATH}) or a shipped model's name "
        f"({', '.join(CATALOG)}; `digitocr models` lists them); default: the shipped {DEFAULT_READER}",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)",
    )
    parser.add_argument("--port", type=port_number, default=8000, help="(default 8000)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | mps (default cpu)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    source = resolve_model(args.model, backend="torch")
    if not source.path.is_file():
        raise ModelFileError(
            f"no model file at {source.path}: make one with `digitocr train` "
            f"(it writes {DEFAULT_MODEL_PATH}), or leave out --model to read with the shipped {DEFAULT_READER}"
        )
    import uvicorn

    from digitocr.devices import resolve_device
    from digitocr.modelfile import read_model_file
    from digitocr.reading.parallel import limit_threads
    from digitocr.serve import ServeSettings, create_app

    # A wrong device or a damaged file fails here in one line, not in a traceback once the server has started.
    read_model_file(source.path, device=resolve_device(args.device))
    # Requests run in parallel threads already; intra-op threads on top of them only fight over the cores:
    # torch's, and numpy's BLAS (its threads spin-waiting beside busy request threads made a read 2-3x slower).
    limit_threads(1)
    app = create_app(ServeSettings(model_path=args.model, device=args.device))
    info(f"digitocr: serving {source.label} at http://{args.host}:{args.port}/ (Ctrl-C stops)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
