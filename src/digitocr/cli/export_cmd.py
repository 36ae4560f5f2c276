"""`digitocr export MODEL --format onnx|pt2 --out PATH`: a deployable file plus MODEL_CARD.md beside it."""

from __future__ import annotations

import argparse

from digitocr.cli.common import add_data_dir, add_json, info, print_json


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a trained model to ONNX or a torch.export program, with a model card",
        description="Write MODEL as ONNX (run it with onnxruntime, no PyTorch needed: "
        "Recognizer(backend='onnx')) or as a torch.export program (pt2), and MODEL_CARD.md beside it. "
        "Both take any batch size: a classifier float32 [N,1,28,28] pixels in [0,1] and returns logits [N,10]; "
        "a line model float32 [N,1,32,W] lines of any width W and returns logits per column [N,W//4,11].",
    )
    parser.add_argument("model", metavar="MODEL", help="a model file written by `digitocr train`")
    parser.add_argument("--format", choices=["onnx", "pt2"], default="onnx", help="(default onnx)")
    parser.add_argument("--out", metavar="PATH", help="where to write it (default: MODEL with .onnx or .pt2)")
    add_data_dir(parser)
    add_json(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from digitocr.export import export_model

    result = export_model(args.model, format=args.format, out=args.out, data_dir=args.data_dir, log=info)
    if args.json:
        print_json(result.to_dict())
    else:
        accuracy = result.metrics["test_accuracy"]
        measure = "exact-string test accuracy on lines" if result.reads_lines else "test accuracy"
        figure = f"{measure} {accuracy:.2%}" if accuracy is not None else "no test figure in the model file"
        print(f"exported {args.model} as {result.format} to {result.path} ({figure}); model card: {result.model_card}")
    return 0
