"""Speed of reading pictures: single-picture latency (decode to answer) and batch throughput, on one core.

Prints the median latency of ``Recognizer.read`` on encoded pictures and the digits per second of
``Recognizer.read_many`` on 1,000 MNIST-sized pictures (PNG files' bytes, and uint8 arrays already in memory),
with the naive baseline (resize to 28x28) in the same run; then the same batches on ``--workers`` processes
of one core each (``Recognizer(workers=N)``; their start-up, about two seconds, is printed apart).

    .venv/bin/python benchmarks/reading_speed.py --model trained_model.pth [--workers 2]
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import platform
import statistics
import time

import numpy as np
from PIL import Image
from reading_accuracy import (  # the same baseline in both benchmarks (benchmarks/ is on sys.path)
    describe_model,
    naive_read,
)

from digitocr.data import load_mnist
from digitocr.reading import Recognizer
from digitocr.reading.parallel import MIN_SHARE, limit_threads
from digitocr.testing.pictures import make_samples


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def median_ms(function, inputs, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        for item in inputs:
            start = time.perf_counter()
            function(item)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="trained_model.pth")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="processes for the last rows")
    args = parser.parse_args()
    limit_threads(1)  # one core, as the target says: torch's threads and numpy's BLAS

    val = load_mnist(log=lambda message: None).val
    images, labels = val.images[:, 0].numpy(), val.labels.numpy()
    recognizer = Recognizer(args.model)
    mnist_pngs = [png((images[i] * 255).astype(np.uint8)) for i in range(args.batch)]
    photos = [sample.data for sample in make_samples("photo", 50, images, labels, seed=1)]
    numbers = [sample.data for sample in make_samples("number", 30, images, labels, seed=2)]
    recognizer.read_many(mnist_pngs[:50])  # warm up

    print(
        f"# reading speed, {datetime.date.today()}, {platform.machine()}, {os.cpu_count()} CPUs, 1 torch/BLAS "
        f"thread, model {describe_model(recognizer)}"
    )
    print("| picture | naive baseline | digitocr |")
    print("|---|---:|---:|")
    for title, inputs in [
        ("MNIST-sized PNG (28x28), one digit", mnist_pngs[:100]),
        ("paper photo JPEG/PNG (80-400 px), one digit", photos),
    ]:
        naive = median_ms(lambda data: naive_read(recognizer, data), inputs, 3)
        ours = median_ms(recognizer.read, inputs, 3)
        print(f"| {title}: median latency | {naive:.2f} ms | {ours:.2f} ms |")
    ours = median_ms(recognizer.read, numbers, 1)
    print(f"| number of 2-8 digits on paper: median latency | - | {ours:.2f} ms |")
    start = time.perf_counter()
    [naive_read(recognizer, data) for data in mnist_pngs]
    naive_rate = len(mnist_pngs) / (time.perf_counter() - start)
    arrays = list((images[: args.batch] * 255).astype(np.uint8))
    for title, inputs in [("PNGs", mnist_pngs), ("uint8 arrays", arrays)]:
        print(
            f"| {len(inputs)} MNIST-sized {title}, read_many: throughput (median of 5) | "
            f"{naive_rate:,.0f} digits/s | {digits_per_second(recognizer, inputs):,.0f} digits/s |"
        )
    if args.workers > 1:
        start = time.perf_counter()
        with Recognizer(args.model, workers=args.workers) as pool:
            pool.read_many(mnist_pngs[: 2 * args.workers * MIN_SHARE])  # starts the workers and warms them up
            started = time.perf_counter() - start
            for title, inputs in [("PNGs", mnist_pngs), ("uint8 arrays", arrays)]:
                print(
                    f"| {len(inputs)} MNIST-sized {title}, read_many on {args.workers} worker processes of one "
                    f"core each: throughput (median of 5) | - | {digits_per_second(pool, inputs):,.0f} digits/s |"
                )
        print(f"\n(the {args.workers} workers started in {started:.1f} s, once, before those rows)")


def digits_per_second(recognizer: Recognizer, inputs: list, repeats: int = 5) -> float:
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        results = recognizer.read_many(inputs)
        rates.append(sum(len(result.digits) for result in results) / (time.perf_counter() - start))
    return statistics.median(rates)


if __name__ == "__main__":
    main()
