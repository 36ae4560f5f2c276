"""``Recognizer``: read the digits in pictures with a trained model.

With a line model, ``lines.py`` finds the lines of digits in the pictures and ``transcribe.py`` reads them all in
batched calls. With a classifier, ``candidates.prepare_many`` turns pictures into the 28x28 digit images the model
sees; the recognizer reads all digits of all pictures in one batched model call, and ``choice.py`` keeps the
reading of each piece (whole or cut) the model is surest of and drops what is not a digit. A single digit is a
number of length one, and a single picture a batch of one: one code path.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import numpy as np

from digitocr.catalog import resolve_model
from digitocr.config import ReadingConfig
from digitocr.errors import ConfigError, ImageError
from digitocr.reading.backends import make_backend
from digitocr.reading.candidates import prepare_loaded
from digitocr.reading.choice import reading_of
from digitocr.reading.images import load_working_many
from digitocr.reading.lines import find_lines_loaded
from digitocr.reading.parallel import MIN_SHARE, ReadingPool
from digitocr.reading.results import ReadResult
from digitocr.reading.transcribe import read_lines


class Recognizer:
    """Reads digits in pictures with one trained model: ``model_path`` a model file (``.pth``, or ``.onnx`` read by
    onnxruntime), a shipped model's name, or None for the reader that ships with the package. ``backend``
    ``auto`` reads ``.onnx`` files, and the shipped reader's ONNX copy wherever onnxruntime is installed, with
    onnxruntime, and everything else with torch (``catalog.resolve_model``). ``threads``: onnxruntime's threads
    (default: all cores; one per process with workers).

    ``workers`` > 1 reads large batches (``read_many``, ``read_each``) in that many processes: this one and
    ``workers - 1`` helpers with one thread each (``parallel.py``). The helpers start with the first such batch
    and stop with ``close()`` or when the recognizer is garbage-collected. Give this process one thread too
    (``parallel.limit_threads``) so the processes do not fight over the cores. Workers are for CPUs: on a GPU
    the model is already parallel.
    """

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        device: str | None = None,
        backend: str = "auto",
        config: ReadingConfig | None = None,
        workers: int = 1,
        threads: int | None = None,
    ):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if workers > 1 and device not in (None, "cpu"):
            raise ConfigError(f"workers read on CPU cores; with device {device!r} leave workers at 1")
        # None or a shipped model's name ("reader"): the reader that ships with the package (``catalog``).
        if backend == "auto" and device not in (None, "cpu"):
            backend = "torch"  # a GPU: only the torch backend runs there
        source = resolve_model(model_path, backend)
        self.model_path, self.model_label = source.path, source.label
        self.config = config or ReadingConfig()
        # With workers every process reads on one core: onnxruntime's own threads would fight over them.
        threads = threads if threads is not None else (1 if workers > 1 else None)
        self.backend = make_backend(self.model_path, device, source.backend, threads)
        if self.backend.reads_lines:  # the config reading uses: a line model reads at its own working size
            self.config = dataclasses.replace(self.config, work_size=self.config.line_work_size)
        self.workers, self._device, self._backend_name = workers, device, source.backend
        self._pool = None

    def close(self) -> None:
        """Stop the worker processes, if any were started (reading again starts them anew)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> Recognizer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _in_parallel(self, count: int) -> ReadingPool | None:
        """The helper processes when this batch is worth splitting, else None."""
        if self.workers < 2 or count < 2 * MIN_SHARE:
            return None
        if self._pool is None or self._pool.closed:  # closed: after an interruption or a dead helper
            # Each helper builds its own one-process reader with this reader's model and settings.
            make_reader = functools.partial(
                Recognizer,
                self.model_path,
                device=self._device,
                backend=self._backend_name,
                config=self.config,
                threads=1,
            )
            self._pool = ReadingPool(self.workers, make_reader)
        return self._pool

    def read(self, image) -> ReadResult:
        """A path, bytes, a PIL image or a numpy array -> the digits in it. Raises ImageError."""
        return self.read_many([image])[0]

    def read_each(self, images) -> list[ReadResult | ImageError]:
        """Like ``read_many``, but a picture that cannot be read gives its ImageError in its place instead of
        failing the others (each is opened and checked first, then the good ones are read together)."""
        images = list(images)
        pool = self._in_parallel(len(images))
        if pool is not None:
            return pool.read_each(images, self._read_each_here)
        return self._read_each_here(images)

    def _read_each_here(self, images: list) -> list[ReadResult | ImageError]:
        answers = load_working_many(images, self.config, errors_in_place=True)
        good = [index for index, loaded in enumerate(answers) if not isinstance(loaded, ImageError)]
        for index, result in zip(good, self._read_loaded([answers[i] for i in good])):
            answers[index] = result
        return answers

    def read_many(self, images) -> list[ReadResult]:
        """Several pictures, with one model call for all their digits (the fast way to read many).

        Raises ImageError for the first picture that cannot be read (``read_each`` reads the others)."""
        images = list(images)
        pool = self._in_parallel(len(images))
        if pool is None:
            return self._read_many_here(images)
        answers = pool.read_each(images, self._read_each_here)
        error = next((answer for answer in answers if isinstance(answer, ImageError)), None)
        if error is not None:
            raise error
        return answers

    def _read_many_here(self, images: list) -> list[ReadResult]:
        return self._read_loaded(load_working_many(images, self.config))

    def _read_loaded(self, loaded: list) -> list[ReadResult]:
        if self.backend.reads_lines:  # a line model reads whole lines of digits, uncut
            return read_lines(find_lines_loaded(loaded, self.config), self.backend, self.config)
        found = prepare_loaded(loaded, self.config)
        everything = [c for candidates in found for whole in candidates for c in [whole, *whole.parts.values()]]
        if everything:
            probabilities = self.backend.probabilities(np.stack([c.image for c in everything]))
            best = np.argsort(-probabilities, axis=1, kind="stable")[:, :3]
            best_probabilities = np.take_along_axis(probabilities, best, axis=1)
            for candidate, row, digits, chances in zip(
                everything, probabilities, best.tolist(), best_probabilities.tolist()
            ):
                candidate.probabilities, candidate.top3 = row, list(zip(digits, chances))
        return [reading_of(candidates, self.config) for candidates in found]
