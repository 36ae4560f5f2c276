"""Three hand-written pieces of the reader against the libraries that do the same job, timed in one process.

1. labelling: ``segment.find_components`` (run-length union-find over a stack) vs ``scipy.ndimage.label`` +
   ``find_objects`` and OpenCV's ``connectedComponentsWithStats`` (on the same mosaic, and picture by picture);
2. resampling: ``stages.fit_box`` (Pillow's filters as two batched matrix products) vs a per-crop loop of
   ``PIL.Image.resize`` (BOX shrinking, BILINEAR enlarging: what it replicates) and of ``cv2.resize``
   (INTER_AREA / INTER_LINEAR), with each one's largest difference from Pillow;
3. the process pool: ``parallel.ReadingPool`` (a pipe per helper) vs ``concurrent.futures.ProcessPoolExecutor``
   with an initializer that builds the reader once per worker, on ``reading_speed.py``'s workers rows.

The inputs are what the reader makes: ink masks and digit crops from the real stages on one paper photo and
one number at the 384-pixel working size, and on 1,000 MNIST-sized pictures of the validation split. Each swap is
then timed on the whole reading (the library's version patched in), as ``reading_speed.py`` measures it, with one
torch/BLAS thread. Timings are medians of interleaved repeats, in this process's CPU time unless ``--clock wall``
(so that other load on a shared machine does not count; the pool rows are wall time); ``library / ours`` above 1
means ours is faster.
OpenCV is not a dependency; install it apart to include it (its rows are skipped otherwise):

    python -m pip install --no-deps --target /tmp/cvlib opencv-python-headless
    PYTHONPATH=/tmp/cvlib .venv/bin/python benchmarks/library_swaps.py --model trained_model.pth [--workers 2]
"""

from __future__ import annotations

import argparse
import datetime
import functools
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from unittest import mock

import numpy as np
from PIL import Image
from reading_accuracy import describe_model  # benchmarks/ is on sys.path
from reading_speed import digits_per_second, png

from digitocr.config import ReadingConfig
from digitocr.data import load_mnist
from digitocr.errors import DigitOCRError
from digitocr.machine import cpu_name
from digitocr.reading import Recognizer, candidates, parallel, recognizer, stages
from digitocr.reading.images import load_working_many
from digitocr.reading.results import pack_answers, unpack_answers
from digitocr.reading.segment import Components, digit_choices, find_components
from digitocr.testing.pictures import make_samples

try:
    import cv2

    cv2.setNumThreads(1)  # one thread, as the reader runs: OpenCV's own threads would fight the other processes
except ImportError:
    cv2 = None
try:
    from scipy import ndimage
except ImportError:
    ndimage = None


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
clock = CLOCKS["cpu"]  # set from --clock


def interleaved(functions: dict, repeats: int) -> dict[str, float]:
    """Median seconds of each function, called in turn (the order rotating) ``repeats`` times."""
    times: dict[str, list[float]] = {name: [] for name in functions}
    names = list(functions)
    for round_ in range(repeats):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            start = clock()
            functions[name]()
            times[name].append(clock() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def print_ratios(title: str, medians: dict[str, float], unit: float = 1000, suffix: str = "ms") -> None:
    ours = medians["ours"]
    cells = [f"{name} {value * unit:.3f} {suffix} ({value / ours:.2f}x)" for name, value in medians.items()]
    print(f"| {title} | " + " | ".join(cells) + " |")


# --- 1. labelling --------------------------------------------------------------------------------------------

PLANE = np.zeros((3, 3, 3), bool)
PLANE[1] = True  # 8-connected within a picture, never across the stack


def scipy_components(masks: np.ndarray) -> Components:
    labels, count = ndimage.label(masks, structure=PLANE)
    slices = ndimage.find_objects(labels)
    boxes = np.array([(x.start, y.start, x.stop, y.stop) for _, y, x in slices], np.int64).reshape(-1, 4)
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:].astype(np.int64)
    return Components(labels, boxes, areas, np.array([p.start for p, _, _ in slices], np.int64))


def _opencv_stats(stats: np.ndarray, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """connectedComponentsWithStats' rows (x, y, w, h, area), background dropped -> boxes, areas, pictures."""
    x, y, w, h, area = stats[1:].astype(np.int64).T
    top = y % height
    return np.stack([x, top, x + w, top + h], axis=1), area, y // height


def opencv_mosaic_components(masks: np.ndarray) -> Components:
    """One call on the pictures laid one under another with an empty row between, as ``find_components`` does."""
    count, height, width = masks.shape
    mosaic = np.zeros((count, height + 1, width), np.uint8)
    mosaic[:, :height] = masks
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mosaic.reshape(-1, width), connectivity=8)
    return Components(labels.reshape(count, height + 1, width)[:, :height], *_opencv_stats(stats, height + 1))


def opencv_loop_components(masks: np.ndarray) -> Components:
    """One call per picture, labels offset to be unique across the stack."""
    all_labels, parts, offset = np.zeros(masks.shape, np.int32), [], 0
    for index, mask in enumerate(masks.view(np.uint8)):
        found, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        all_labels[index] = np.where(labels > 0, labels + offset, 0)
        boxes, areas, _ = _opencv_stats(stats, masks.shape[1])
        parts.append((boxes, areas, np.full(len(areas), index, np.int64)))
        offset += found - 1
    return Components(all_labels, *(np.concatenate(column) for column in zip(*parts)))


def same_partition(ours: Components, theirs: Components) -> bool:
    """The same components with the same boxes and areas, whatever their numbering."""
    if ours.count != theirs.count:
        return False
    ink = ours.labels > 0
    pairs = np.unique(np.stack([ours.labels[ink], theirs.labels[ink]]), axis=1)
    if pairs.shape[1] != ours.count or (theirs.labels[~ink] != 0).any():
        return False
    order = np.empty(ours.count, np.int64)
    order[pairs[0] - 1] = pairs[1] - 1  # our component i is their component order[i]
    return all(
        np.array_equal(getattr(ours, field), getattr(theirs, field)[order]) for field in ("boxes", "areas", "pictures")
    )


def labelling_rows(inputs: dict[str, np.ndarray], repeats: int) -> None:
    contenders = {"ours": find_components}
    if ndimage is not None:
        contenders["scipy.ndimage.label"] = scipy_components
    if cv2 is not None:
        contenders["cv2 CCWithStats mosaic"] = opencv_mosaic_components
        contenders["cv2 CCWithStats per picture"] = opencv_loop_components
    for title, masks in inputs.items():
        reference = find_components(masks)
        for name, function in list(contenders.items())[1:]:
            if not same_partition(reference, function(masks)):
                print(f"(!) {name} labels {title} differently")
        runs = repeats if len(masks) > 1 else 10 * repeats
        print_ratios(
            f"label {title}", interleaved({n: functools.partial(f, masks) for n, f in contenders.items()}, runs)
        )


# --- 2. resampling -------------------------------------------------------------------------------------------


def digit_batch(greys: np.ndarray, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Working images (N, H, W) -> what ``fit_box`` is given when they are read: the thickened ink of every
    piece and part, and its windows (the steps of ``candidates.candidates_in`` and ``stages.normalise_digits``)."""
    contrast, mask = candidates.ink_of(greys)
    crops = [
        (contrast[picture, y0:y1, x0:x1], piece.mask)
        for picture, found in enumerate(digit_choices(find_components(mask)))
        for whole, lattice in found
        for piece in [whole, *(lattice.parts.values() if lattice else ())]
        for x0, y0, x1, y1 in [piece.box]
    ][:limit]
    ink_contrast, masks, sizes = stages.stack_crops(crops)
    ink = stages.saturate(ink_contrast, masks)
    return stages.thicken(ink, sizes, stages.thickening_radius(stages.stroke_width(masks), sizes))


def _out_sizes(windows: np.ndarray, box: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    heights, widths = windows[:, 2], windows[:, 3]
    scale = box / np.maximum(np.maximum(heights, widths), 1)
    return np.maximum(1, np.round(heights * scale)), np.maximum(1, np.round(widths * scale)), scale < 1


def _fit_each(resize, ink: np.ndarray, windows: np.ndarray, box: int = stages.DIGIT_BOX):
    """``fit_box``'s answer made crop by crop with ``resize(crop, (width, height), shrinking)``."""
    fitted = np.zeros((len(ink), box, box), np.float32)
    out_heights, out_widths, shrinking = _out_sizes(windows, box)
    for index, (top, left, height, width) in enumerate(windows.tolist()):
        out_height, out_width = int(out_heights[index]), int(out_widths[index])
        crop = ink[index, top : top + height, left : left + width]
        fitted[index, :out_height, :out_width] = resize(crop, (out_width, out_height), bool(shrinking[index]))
    return np.clip(fitted, 0, 1), np.stack([out_heights, out_widths], axis=1).astype(np.int64)


def _pillow_resize(crop: np.ndarray, size: tuple[int, int], shrinking: bool) -> np.ndarray:
    return np.asarray(Image.fromarray(crop, "F").resize(size, Image.BOX if shrinking else Image.BILINEAR))


def _opencv_resize(crop: np.ndarray, size: tuple[int, int], shrinking: bool) -> np.ndarray:
    return cv2.resize(crop, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


pillow_fit_box = functools.partial(_fit_each, _pillow_resize)
opencv_fit_box = functools.partial(_fit_each, _opencv_resize)


def resampling_rows(batches: dict[str, tuple[np.ndarray, np.ndarray]], repeats: int) -> None:
    contenders = {"ours": stages.fit_box, "PIL resize per crop": pillow_fit_box}
    if cv2 is not None:
        contenders["cv2.resize per crop"] = opencv_fit_box
    for title, (ink, windows) in batches.items():
        pillow = pillow_fit_box(ink, windows)[0]
        differences = ", ".join(
            f"{name} {np.abs(function(ink, windows)[0] - pillow).max():.1e}"
            for name, function in contenders.items()
            if function is not pillow_fit_box
        )
        runs = repeats if len(ink) > 100 else 10 * repeats
        calls = {name: functools.partial(function, ink, windows) for name, function in contenders.items()}
        print_ratios(f"fit {title}", interleaved(calls, runs))
        print(f"|   largest difference from Pillow: {differences} |")


# --- 3. the pool ---------------------------------------------------------------------------------------------

_worker_reader = None  # the reader of an executor's worker process


def _start_worker(make_reader) -> None:
    global _worker_reader
    parallel.limit_threads(1)
    _worker_reader = make_reader()


def _read_share(pictures) -> tuple:
    return pack_answers(_worker_reader.read_each(list(pictures)))


class ExecutorPool:
    """``parallel.ReadingPool``'s interface on a ``ProcessPoolExecutor``: the caller reads the first share while
    the workers read the others, the same shares, shipping and packing."""

    def __init__(self, workers: int, make_reader):
        self.workers = workers
        self._executor = ProcessPoolExecutor(
            workers - 1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(make_reader,),
        )
        self.closed = False

    def read_each(self, pictures: list, read_here) -> list:
        first, *others = parallel._split(pictures, min(self.workers, len(pictures) // parallel.MIN_SHARE))
        try:
            futures = [self._executor.submit(_read_share, parallel._shippable(share)) for share in others]
            answers = read_here(first)
            return answers + [answer for future in futures for answer in unpack_answers(future.result())]
        except BrokenProcessPool:
            self.close()
            raise DigitOCRError(parallel.HELPER_DIED) from None

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.closed = True


class TimedReader:
    """A helper's reader that notes when each share reaches it (time.time(), one line to ``log``): how long the
    share took to travel while the caller was busy reading its own."""

    def __init__(self, log: str, make_reader):
        self.log, self.reader = log, make_reader()

    def read_each(self, pictures: list) -> list:
        with open(self.log, "a") as file:
            file.write(f"{time.time()}\n")
        return self.reader.read_each(pictures)


def _timed(pool, log: str):
    return lambda workers, make_reader: pool(workers, functools.partial(TimedReader, log, make_reader))


def pool_rows(model: str, workers: int, inputs: dict[str, list], repeats: int) -> None:
    warm_up = inputs["PNGs"][: 2 * workers * parallel.MIN_SHARE]
    readers, logs = {}, {}
    for name, pool in [("ours", parallel.ReadingPool), ("ProcessPoolExecutor", ExecutorPool)]:
        readers[name], logs[name] = Recognizer(model, workers=workers), tempfile.mkstemp(suffix=".log")[1]
        with mock.patch.object(recognizer, "ReadingPool", _timed(pool, logs[name])):
            start = time.perf_counter()
            readers[name].read_many(warm_up)  # the pool starts with the first large batch
            print(f"| {name} pool: start-up and first batch | {time.perf_counter() - start:.2f} s |")
    for title, pictures in inputs.items():
        rates: dict[str, list[float]] = {name: [] for name in readers}
        delays: dict[str, list[float]] = {name: [] for name in readers}
        for round_ in range(repeats):  # interleaved: the machine's load changes over a run
            for name in list(readers)[round_ % 2 :] + list(readers)[: round_ % 2]:
                sent = time.time()
                rates[name].append(digits_per_second(readers[name], pictures, repeats=1))
                with open(logs[name]) as file:
                    delays[name].append(float(file.read().split()[-1]) - sent)
        medians = {name: statistics.median(values) for name, values in rates.items()}
        # A rate: its inverse is the time, so library / ours is ours / library here.
        cells = [
            f"{name} {rate:,.0f} digits/s ({medians['ours'] / rate:.2f}x; runs {min(rates[name]):,.0f}-"
            f"{max(rates[name]):,.0f}; share reached the helper after {statistics.median(delays[name]) * 1000:.1f} ms)"
            for name, rate in medians.items()
        ]
        print(f"| {len(pictures)} MNIST-sized {title}, read_many on {workers} processes | " + " | ".join(cells) + " |")
    for name, reader in readers.items():
        reader.close()
        os.remove(logs[name])


# --- the whole reading with a swap -----------------------------------------------------------------------------


def whole_reading_rows(reader: Recognizer, inputs: dict[str, list], swaps: dict, repeats: int) -> None:
    """Median time per picture (single pictures) or per batch, ours and with each swap patched in."""
    for title, pictures in inputs.items():
        batch = len(pictures) >= 1000  # else the pictures are read one at a time: the latency
        read = (
            functools.partial(reader.read_many, pictures)
            if batch
            else functools.partial(_read_one_by_one, reader, pictures)
        )
        calls = {"ours": read} | {name: _patched(patch, read) for name, patch in swaps.items()}
        texts = {name: [result.text for result in call()] for name, call in calls.items()}
        changed = {name: sum(a != b for a, b in zip(texts["ours"], texts[name])) for name in swaps}
        if any(changed.values()):
            print(f"|   readings changed by the swap ({title}): {changed} of {len(pictures)} pictures |")
        medians = interleaved(calls, repeats)
        if batch:
            print_ratios(f"read_many {len(pictures)} {title}", medians)
        else:
            print_ratios(f"read one {title}, per picture", {name: t / len(pictures) for name, t in medians.items()})


def _read_one_by_one(reader: Recognizer, pictures: list) -> list:
    return [reader.read(picture) for picture in pictures]


def _patched(patch: tuple, call):
    module, name, replacement = patch

    def run():
        with mock.patch.object(module, name, replacement):
            return call()

    return run


def working_image(samples) -> np.ndarray:
    """The first sample's working image whose longest side is the full working size."""
    config = ReadingConfig()
    for sample in samples:
        ((grey, _),) = load_working_many([sample.data], config)
        if max(grey.shape) == config.work_size:
            return grey
    raise RuntimeError("no sample reaches the working size")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="trained_model.pth")
    parser.add_argument("--repeats", type=int, default=11, help="interleaved repeats per figure (median)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the pool rows")
    parser.add_argument("--parts", default="label,fit,whole,pool", help="which of the measures to run, comma-separated")
    parser.add_argument(
        "--clock",
        choices=CLOCKS,
        default="cpu",
        help="for the one-process rows: this process's CPU time (default; "
        "other load on a shared machine does not count) or wall time",
    )
    args = parser.parse_args()
    global clock
    clock = CLOCKS[args.clock]
    parallel.limit_threads(1)

    val = load_mnist(log=lambda message: None).val
    images, labels = val.images[:, 0].numpy(), val.labels.numpy()
    photo = working_image(make_samples("photo", 200, images, labels, seed=1))
    number = working_image(make_samples("number", 50, images, labels, seed=2))
    arrays = list((images[:1000] * 255).astype(np.uint8))
    mnist = np.stack([grey for grey, _ in load_working_many(arrays, ReadingConfig())])
    print(
        f"# library swaps, {datetime.date.today()}, {cpu_name()} ({platform.machine()}), "
        f"{os.cpu_count()} CPUs, 1 torch/BLAS thread, {args.clock} time; library / ours (above 1: ours is faster)"
    )

    parts = set(args.parts.split(","))
    if "label" in parts:
        labelling(photo, number, mnist, args.repeats)
    if "fit" in parts:
        resampling(photo, number, mnist, args.repeats)
    if "whole" in parts:
        whole_reading(args.model, images, labels, arrays, args.repeats)
    if "pool" in parts:
        print(f"\n## 3. the pool, {args.workers} processes of one core each (reading_speed.py's workers rows)")
        pngs = [png(array) for array in arrays]
        pool_rows(args.model, args.workers, {"PNGs": pngs, "uint8 arrays": arrays}, args.repeats)


def labelling(photo: np.ndarray, number: np.ndarray, mnist: np.ndarray, repeats: int) -> None:
    print("\n## 1. labelling the ink masks (find_components)")
    masks = {
        f"one photo {photo.shape[1]}x{photo.shape[0]}": candidates.ink_of(photo[None])[1],
        f"one number {number.shape[1]}x{number.shape[0]}": candidates.ink_of(number[None])[1],
        f"{len(mnist)} MNIST-sized {mnist.shape[2]}x{mnist.shape[1]}": candidates.ink_of(mnist)[1],
    }
    labelling_rows(masks, repeats)


def resampling(photo: np.ndarray, number: np.ndarray, mnist: np.ndarray, repeats: int) -> None:
    print("\n## 2. fitting the digit crops into 20x20 (fit_box)")
    batches = {
        "1 digit (a photo's)": digit_batch(photo[None]),
        "10 digits (a number's pieces and parts)": digit_batch(number[None], 10),
        "1000 digits (MNIST-sized pictures')": digit_batch(mnist, 1000),
    }
    resampling_rows(batches, repeats)


def whole_reading(model: str, images: np.ndarray, labels: np.ndarray, arrays: list, repeats: int) -> None:
    reader = Recognizer(model)
    print(f"\n## the whole reading with each swap patched in, model {describe_model(reader)}")
    swaps = {}
    if ndimage is not None:
        swaps["scipy label"] = (candidates, "find_components", scipy_components)
    if cv2 is not None:
        swaps["cv2 label mosaic"] = (candidates, "find_components", opencv_mosaic_components)
    swaps["PIL resize"] = (stages, "fit_box", pillow_fit_box)
    if cv2 is not None:
        swaps["cv2 resize"] = (stages, "fit_box", opencv_fit_box)
    photos = [sample.data for sample in make_samples("photo", 50, images, labels, seed=1)]
    numbers = [sample.data for sample in make_samples("number", 30, images, labels, seed=2)]
    reader.read_many(photos)  # warm up
    inputs = {"paper photo (80-400 px)": photos, "number of 2-8 digits": numbers, "MNIST-sized uint8 arrays": arrays}
    whole_reading_rows(reader, inputs, swaps, repeats)


if __name__ == "__main__":
    main()
