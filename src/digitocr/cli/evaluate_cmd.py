"""`digitocr evaluate MODEL`: test accuracy, per-class precision/recall/F1 and the confusion matrix; for a line
model, exact-line accuracy, digit error rate and accuracy per length on lines made of MNIST test digits."""

from __future__ import annotations

import argparse

from digitocr.cli.common import add_data_dir, add_json, add_report_dir, info, print_json, report_written
from digitocr.config import CLASS_NAMES


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="measure a saved model on the MNIST test set",
        description="Test accuracy, per-class precision/recall/F1 and the confusion matrix of a saved model; "
        "for a line model, exact-line accuracy, digit error rate and accuracy per number of digits on lines "
        "made of MNIST test digits (as many as its config's test_lines).",
    )
    parser.add_argument("model", metavar="MODEL", help="a model file written by `digitocr train`")
    add_data_dir(parser)
    parser.add_argument("--device", default="cpu", help="cpu | cuda | mps | auto (default cpu)")
    add_report_dir(parser)
    add_json(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from digitocr.data import read_mnist, to_float_images
    from digitocr.data.memory import Split
    from digitocr.devices import resolve_device
    from digitocr.evaluation import evaluate, evaluate_lines
    from digitocr.modelfile import read_model_file
    from digitocr.models import reads_lines

    model_file = read_model_file(args.model, device=resolve_device(args.device))
    images, labels = read_mnist(args.data_dir, train=False, log=info)
    test = Split(to_float_images(images), labels)
    lines = reads_lines(model_file.config.model)
    if lines:
        metrics = evaluate_lines(model_file.model, test, model_file.config.lines)
    else:
        metrics = evaluate(model_file.model, test)
    if args.report_dir:
        from digitocr.reports import write_model_report

        report_written(write_model_report(args.report_dir, model_file, test, metrics, model_path=args.model))
    if args.json:
        print_json(metrics)
    else:
        print(format_line_report(metrics) if lines else format_report(metrics))
    return 0


def format_report(metrics: dict) -> str:
    lines = [f"test accuracy: {metrics['test_accuracy']:.2%}", "", "class  precision  recall     f1  support"]
    for name, row in metrics["per_class"].items():
        lines.append(f"{name:>5}  {row['precision']:9.4f}  {row['recall']:6.4f}  {row['f1']:5.4f}  {row['support']:7d}")
    lines += [
        "",
        "confusion matrix (rows: true digit, columns: predicted)",
        "      " + "".join(f"{name:>6}" for name in CLASS_NAMES),
    ]
    for name, row in zip(CLASS_NAMES, metrics["confusion_matrix"]):
        lines.append(f"{name:>6}" + "".join(f"{count:6d}" for count in row))
    return "\n".join(lines)


def format_line_report(metrics: dict) -> str:
    lines = [
        f"exact-line accuracy: {metrics['test_accuracy']:.2%} of {metrics['lines']:,} test lines",
        f"digit error rate: {metrics['digit_error_rate']:.2%} (insertions, deletions and substitutions per digit)",
        "",
        "digits  exact",
    ]
    lines += [f"{length:>6}  {share:6.2%}" for length, share in metrics["per_length"].items()]
    return "\n".join(lines)
