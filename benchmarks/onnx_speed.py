"""Torch vs ONNX Runtime on the CPU: latency of one image and throughput of batches of 1,000.

    .venv/bin/python benchmarks/onnx_speed.py [--model trained_model.pth] [--threads N] [--seeds 3]

Speed does not depend on the weights, so without a model file the default MLP with random weights is timed.
Both engines get the same number of threads. Prints the machine, the date, mean ± std over repeats, and the
onnxruntime/torch ratios.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from digitocr.config import TrainConfig
from digitocr.export import export_onnx
from digitocr.machine import cpu_name
from digitocr.modelfile import load_model
from digitocr.models import build_model
from digitocr.reading.onnx_backend import OnnxBackend


def seconds_per_call(run, calls: int) -> float:
    run()  # warm-up: first calls allocate and pick kernels
    started = time.perf_counter()
    for _ in range(calls):
        run()
    return (time.perf_counter() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a trained model file (default: the default MLP, random weights)")
    parser.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 4))
    parser.add_argument("--seeds", type=int, default=3, help="repeats of each measurement")
    parser.add_argument("--calls", type=int, default=300, help="batch-1 calls per repeat")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = load_model(args.model) if args.model else build_model(TrainConfig().model).eval()
    with tempfile.TemporaryDirectory() as folder:
        onnx_path = export_onnx(model, Path(folder) / "model.onnx")
        backend = OnnxBackend(onnx_path, threads=args.threads)

    rng = np.random.default_rng(0)
    one, thousand = (rng.random((n, 1, 28, 28), dtype=np.float32) for n in (1, 1000))
    one_t, thousand_t = torch.from_numpy(one), torch.from_numpy(thousand)

    def torch_run(batch):
        with torch.inference_mode():
            return model(batch)

    rows = {
        "latency, batch 1 (ms)": (lambda: torch_run(one_t), lambda: backend.logits(one), args.calls, 1e3),
        "throughput, batch 1000 (img/s)": (
            lambda: torch_run(thousand_t),
            lambda: backend.logits(thousand),
            max(args.calls // 10, 5),
            None,
        ),
    }
    print(
        f"{datetime.date.today()} | {cpu_name()} | {os.cpu_count()} CPUs | "
        f"{args.threads} threads | torch {torch.__version__} | onnxruntime "
        f"{__import__('onnxruntime').__version__} | {args.seeds} repeats"
    )
    print(f"{'measure':32} {'torch':>18} {'onnxruntime':>18} {'ort/torch':>10}")
    for name, (torch_call, ort_call, calls, scale) in rows.items():
        results = {}
        for engine, call in (("torch", torch_call), ("ort", ort_call)):
            times = [seconds_per_call(call, calls) for _ in range(args.seeds)]
            values = [t * scale for t in times] if scale else [1000 / t for t in times]
            results[engine] = (statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
        ratio = results["ort"][0] / results["torch"][0]
        cells = [
            f"{mean:10.3f} ± {std:5.3f}" if scale else f"{mean:10,.0f} ± {std:5,.0f}" for mean, std in results.values()
        ]
        print(f"{name:32} {cells[0]:>18} {cells[1]:>18} {ratio:9.2f}x")
    print("ort/torch < 1 means onnxruntime is faster for latency; > 1 means it is faster for throughput")


if __name__ == "__main__":
    main()
