"""Speed of reading pictures: single-picture latency (decode to answer) and batch throughput, on one core.

Prints the median latency of ``Recognizer.read`` on encoded pictures and the digits per second of
``Recognizer.read_many`` on 1,000 MNIST-sized pictures (PNG files' bytes, and uint8 arrays already in memory),
with the naive baseline (resize to 28x28) in the same run; then the same batches on ``--workers`` processes
of one core each (``Recognizer(workers=N)``; their start-up, about two seconds, is printed apart).

``--folder COUNT`` measures instead what a user waits for: ``digitocr predict DIR --csv OUT`` as a new process
(start-up, model, workers, the folder walk, decoding, the CSV) on COUNT MNIST-sized PNG files in 100 subfolders,
with ``--workers 1`` (the baseline) and ``--workers 2``, runs of the two taking turns.

``--work-sizes A,B`` measures instead what a line model's working size (``ReadingConfig.line_work_size``) costs:
the median latency of pictures of several kinds (each read three times) at size A (the baseline) and at size B,
in this process, the two readers taking turns picture by picture, and the ratio B / A.

    .venv/bin/python benchmarks/reading_speed.py --model trained_model.pth [--workers 2]
    .venv/bin/python benchmarks/reading_speed.py --model trained_model.pth --folder 10000
    .venv/bin/python benchmarks/reading_speed.py --model lines --work-sizes 384,512
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from reading_accuracy import (  # the same baseline in both benchmarks (benchmarks/ is on sys.path)
    describe_model,
    naive_read,
)

from digitocr.config import ReadingConfig
from digitocr.data import load_mnist
from digitocr.errors import DigitOCRError
from digitocr.machine import cpu_name
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
    parser.add_argument(
        "--model", default="reader", help="model file or shipped model name (default: the shipped reader)"
    )
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="processes for the last rows")
    parser.add_argument("--folder", type=int, default=0, metavar="COUNT", help="a folder of COUNT PNGs end to end")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each command with --folder")
    parser.add_argument(
        "--work-sizes",
        metavar="A,B",
        type=two_sizes,
        help="a line model's working size A (baseline) against B, picture by picture",
    )
    args = parser.parse_args()
    if args.folder and args.work_sizes:
        parser.error("--folder and --work-sizes measure different things: give one")
    if args.folder:
        folder_speed(args.model, args.folder, args.repeats)
        return
    limit_threads(1)  # one core, as the target says: torch's threads and numpy's BLAS
    if args.work_sizes:
        work_size_speed(args.model, args.work_sizes)
        return

    val = load_mnist(log=lambda message: None).val
    images, labels = val.images[:, 0].numpy(), val.labels.numpy()
    recognizer = Recognizer(args.model)
    mnist_pngs = [png((images[i] * 255).astype(np.uint8)) for i in range(args.batch)]
    photos = [sample.data for sample in make_samples("photo", 50, images, labels, seed=1)]
    numbers = [sample.data for sample in make_samples("number", 30, images, labels, seed=2)]
    recognizer.read_many(mnist_pngs[:50])  # warm up

    print(
        f"# reading speed, {datetime.date.today()}, {cpu_name()} ({platform.machine()}), {os.cpu_count()} CPUs, "
        f"1 torch/BLAS thread, model {describe_model(recognizer)}"
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


WORK_SIZE_KINDS = {  # kind of picture -> how many (the repeats are the same pictures again)
    "number": 30,
    "photo": 30,
    "comb": 30,
    "small": 30,
    "lines": 30,
}


def two_sizes(text: str) -> list[int]:
    """--work-sizes A,B -> [A, B], two positive pixel counts."""
    try:
        sizes = [int(size) for size in text.split(",")]
    except ValueError:
        sizes = []
    if len(sizes) != 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"two working sizes in pixels, A,B (e.g. 384,512), not {text!r}")
    return sizes


def work_size_speed(model: str, sizes: list[int], repeats: int = 3) -> None:
    readers = [Recognizer(model, config=ReadingConfig(line_work_size=size)) for size in sizes]
    if not readers[0].backend.reads_lines:
        raise SystemExit(f"{model} is a classifier: --work-sizes is a line model's (line_work_size)")
    val = load_mnist(log=lambda message: None).val
    images, labels = val.images[:, 0].numpy(), val.labels.numpy()
    print(
        f"# a line model's working size, {datetime.date.today()}, {cpu_name()} ({platform.machine()}), "
        f"{os.cpu_count()} CPUs, 1 torch/BLAS thread, model {describe_model(readers[0])}, the median of every "
        f"read of a kind (each picture {repeats} times), the two sizes taking turns"
    )
    print(f"| picture | {sizes[0]} px | {sizes[1]} px | ratio |")
    print("|---|---:|---:|---:|")
    for seed, (kind, count) in enumerate(WORK_SIZE_KINDS.items()):
        pictures = [sample.data for sample in make_samples(kind, count, images, labels, seed=seed)]
        for reader in readers:
            reader.read_many(pictures[:5])  # warm up
        times: list[list[float]] = [[], []]
        for _ in range(repeats):
            for picture in pictures:
                for index, reader in enumerate(readers):
                    start = time.perf_counter()
                    reader.read(picture)
                    times[index].append(time.perf_counter() - start)
        medians = [statistics.median(seconds) * 1000 for seconds in times]
        print(f"| {kind} | {medians[0]:.2f} ms | {medians[1]:.2f} ms | {medians[1] / medians[0]:.2f}x |")


def folder_speed(model: str, count: int, repeats: int) -> None:
    images = (load_mnist(log=lambda message: None).val.images[:, 0].numpy() * 255).astype(np.uint8)
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp) / "pictures"
        for index in range(count):  # the validation split's digits, again from the start past its 5,000
            path = folder / f"{index % 100:02d}" / f"{index:05d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png(images[index % len(images)]))
        (Path(temp) / "one.png").write_bytes(png(images[0]))
        predict = [sys.executable, "-m", "digitocr", "predict", "--model", model]
        seconds: dict[str, list[float]] = {"start-up": [], "1": [], "2": []}
        for repeat in range(repeats):
            seconds["start-up"].append(timed([*predict, str(Path(temp) / "one.png")]))
            for workers in ("1", "2"):
                out = Path(temp) / f"results{workers}-{repeat}.csv"
                seconds[workers].append(timed([*predict, str(folder), "--csv", str(out), "--workers", workers]))
                assert out.read_text().count("\n") == count + 1, f"{out} does not have a row per picture"
    print(
        f"# reading a folder end to end, {datetime.date.today()}, {cpu_name()} ({platform.machine()}), "
        f"{os.cpu_count()} CPUs, {count:,} MNIST-sized PNGs, model {model}, median of {repeats} runs (range)"
    )
    print("| command | seconds | pictures/s | vs --workers 1 |")
    print("|---|---:|---:|---:|")
    print(f"| `digitocr predict one.png` (start-up) | {spread(seconds['start-up'])} | - | - |")
    baseline = count / statistics.median(seconds["1"])
    for workers in ("1", "2"):
        rate = count / statistics.median(seconds[workers])
        print(
            f"| `digitocr predict DIR --csv OUT --workers {workers}` | {spread(seconds[workers])} | {rate:,.0f} | "
            f"{rate / baseline:.2f}x |"
        )


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


if __name__ == "__main__":
    try:
        main()
    except DigitOCRError as error:  # a missing model file, a picture that cannot be read: one line, no traceback
        raise SystemExit(f"{Path(__file__).name}: {error}") from None
