"""Reading large batches on several processes: each worker holds its own ``Recognizer`` and reads a share.

Pictures are independent, so a batch splits into contiguous shares with no coordination and the answers come
back in order. Processes, not threads: decoding and the per-picture steps hold the GIL, so two threads read
a batch only ~1.3x faster on two cores (measured), processes nearly 2x. Workers are started with "spawn"
(forking a process whose torch and BLAS thread pools are running can deadlock), once per pool: each imports
the reader and loads the model once (about two seconds), then reads every share it is given with one
torch and one BLAS thread, so N workers use N cores.
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

MIN_SHARE = 32  # fewer pictures per worker than this are read in the calling process: shipping them costs more

_worker_recognizer = None  # the Recognizer of this worker process


def limit_threads(count: int = 1) -> None:
    """Let this process use ``count`` threads for torch's operators and numpy's BLAS (when installed)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(count, user_api="blas")
    try:
        import torch
    except ImportError:  # the ONNX reader runs without torch
        return
    torch.set_num_threads(count)


def _start_worker(model_path: str, device: str | None, backend: str, config: ReadingConfig) -> None:
    global _worker_recognizer
    from digitocr.reading.recognizer import Recognizer

    limit_threads(1)
    _worker_recognizer = Recognizer(model_path, device=device, backend=backend, config=config)


def _read_share(method: str, pictures: list) -> tuple:
    return _pack(getattr(_worker_recognizer, method)(pictures))


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
    """``workers`` processes reading shares of a batch with the same model and settings as the caller."""

    def __init__(self, workers: int, model_path: str | os.PathLike, device: str | None, backend: str,
                 config: ReadingConfig):
        if workers < 2:
            raise ValueError(f"a reading pool needs at least 2 workers, got {workers}")
        self.workers = workers
        self._executor = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
            initargs=(str(model_path), device, backend, config))
        # Shut the workers down with the pool's owner, even when nobody calls close().
        self._finalizer = weakref.finalize(self, self._executor.shutdown, wait=False, cancel_futures=True)

    def read(self, method: str, pictures: list) -> list:
        """``Recognizer.<method>(pictures)`` split over the workers; the answers in the pictures' order.

        An ImageError raised in a worker (``read_many``: a picture that cannot be read) is raised here for the
        earliest share that had one.
        """
        shares = _split(pictures, min(self.workers, len(pictures) // MIN_SHARE))
        try:
            futures = [self._executor.submit(_read_share, method, share) for share in shares]
            return [answer for future in futures for answer in _unpack(future.result())]
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
