"""Reading large batches on several processes: the caller reads one share, helper processes the others.

Pictures are independent, so a batch splits into contiguous shares with no coordination and the answers come
back in order. Processes, not threads: decoding and the per-picture steps hold the GIL, so two threads read
a batch only ~1.3x faster on two cores (measured). Helpers are started with "spawn" (forking a process whose
torch and BLAS thread pools are running can deadlock), once per pool: each imports the reader and loads the
model once (about two seconds), then reads every share it is given with one torch and one BLAS thread. The
caller reads the first share meanwhile instead of waiting: one process fewer to feed, and half the pickling.
"""

from __future__ import annotations

import multiprocessing
import os
import weakref
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from digitocr.config import ReadingConfig
from digitocr.errors import DigitOCRError

MIN_SHARE = 32  # fewer pictures per process than this are read by the caller alone: shipping them costs more

_worker_recognizer = None  # the Recognizer of this worker process


def limit_threads(count: int = 1):
    """Let this process use ``count`` threads for torch's operators and numpy's BLAS -> a function that puts
    the previous limits back."""
    from threadpoolctl import threadpool_limits

    blas = threadpool_limits(count, user_api="blas")
    try:
        import torch
    except ImportError:  # the ONNX reader runs without torch
        return blas.restore_original_limits
    before = torch.get_num_threads()
    torch.set_num_threads(count)

    def restore() -> None:
        blas.restore_original_limits()
        torch.set_num_threads(before)

    return restore


def _start_worker(model_path: str, device: str | None, backend: str, config: ReadingConfig) -> None:
    global _worker_recognizer
    from digitocr.reading.recognizer import Recognizer

    limit_threads(1)
    _worker_recognizer = Recognizer(model_path, device=device, backend=backend, config=config)


def _read_share(method: str, pictures) -> tuple:
    return _pack(getattr(_worker_recognizer, method)(list(pictures)))


def _shippable(pictures: list):
    """Same-shaped arrays (an MNIST-sized batch) travel as one stacked array: one pickle instead of hundreds."""
    first = pictures[0] if pictures else None
    if isinstance(first, np.ndarray) and all(isinstance(picture, np.ndarray) and picture.shape == first.shape
                                             and picture.dtype == first.dtype for picture in pictures):
        return np.stack(pictures)
    return pictures


def _pack(answers: list) -> tuple:
    """Results (and ImageErrors) -> plain tuples plus two stacked arrays: a tenth of the cost of pickling the
    dataclasses with a small array each, which was as slow as reading the pictures."""
    from digitocr.reading.recognizer import ReadResult

    digits = [d for answer in answers if isinstance(answer, ReadResult) for d in answer.digits]
    images = np.stack([d.image for d in digits]) if digits else np.zeros((0, 28, 28), np.float32)
    probabilities = np.stack([d.probabilities for d in digits]) if digits else np.zeros((0, 10), np.float32)
    rows = [(answer.text, [(d.digit, d.confidence, d.box, d.top3) for d in answer.digits])
            if isinstance(answer, ReadResult) else answer for answer in answers]
    return rows, images, probabilities


def _unpack(packed: tuple) -> list:
    from digitocr.reading.recognizer import DigitReading, ReadResult

    rows, images, probabilities = packed
    answers, index = [], 0
    for row in rows:
        if isinstance(row, Exception):
            answers.append(row)
            continue
        text, digits = row
        answers.append(ReadResult(text, [DigitReading(digit, confidence, box, top3, images[index + k],
                                                      probabilities[index + k])
                                         for k, (digit, confidence, box, top3) in enumerate(digits)]))
        index += len(digits)
    return answers


class ReadingPool:
    """The caller and ``workers - 1`` helper processes reading shares of a batch with the same model and
    settings."""

    def __init__(self, workers: int, model_path: str | os.PathLike, device: str | None, backend: str,
                 config: ReadingConfig):
        if workers < 2:
            raise ValueError(f"a reading pool needs at least 2 workers, got {workers}")
        self.workers = workers
        self._executor = ProcessPoolExecutor(
            workers - 1, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
            initargs=(str(model_path), device, backend, config))
        # Shut the workers down with the pool's owner, even when nobody calls close().
        self._finalizer = weakref.finalize(self, self._executor.shutdown, wait=False, cancel_futures=True)

    def read(self, method: str, pictures: list, read_here) -> list:
        """``Recognizer.<method>(pictures)`` split over the processes; the answers in the pictures' order.

        ``read_here`` reads the first share in this process while the helpers read the rest. An ImageError
        (``read_many``: a picture that cannot be read) is raised here for the earliest share that had one.
        """
        first, *others = _split(pictures, min(self.workers, len(pictures) // MIN_SHARE))
        try:
            futures = [self._executor.submit(_read_share, method, _shippable(share)) for share in others]
            answers = read_here(first)
            return answers + [answer for future in futures for answer in _unpack(future.result())]
        except BrokenProcessPool as error:
            raise DigitOCRError(f"a reading worker process died ({error}); the batch was not read") from None

    def close(self) -> None:
        self._finalizer()


def _split(items: list, parts: int) -> list[list]:
    """``items`` in ``parts`` contiguous shares of sizes differing by at most one."""
    parts = max(1, parts)
    size, extra = divmod(len(items), parts)
    bounds = [index * size + min(index, extra) for index in range(parts + 1)]
    return [items[start:end] for start, end in zip(bounds[:-1], bounds[1:])]
