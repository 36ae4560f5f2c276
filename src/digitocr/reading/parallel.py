"""Reading large batches on several processes: the caller reads one share, helper processes the others.

Pictures are independent, so a batch splits into contiguous shares with no coordination and the answers come
back in order. Processes, not threads: decoding and the per-picture steps hold the GIL, so two threads read
a batch only ~1.3x faster on two cores (measured). Helpers are started with "spawn" (forking a process whose
torch and BLAS thread pools are running can deadlock), once per pool: each imports the reader and loads the
model once (about two seconds), then reads every share it is given with one torch and one BLAS thread.

Each helper has a pipe of its own, written and read by the caller's thread: a share is sent in full before
the caller starts on its own share, and the answers are read once it is done. The pool knows nothing of the
reader but a factory and its ``read_each``. (With a process-pool executor the share travelled through a
feeder thread that had to win the GIL from the busy caller, so a helper often started its share late.)
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import signal
import sys
import weakref
from collections.abc import Callable

import numpy as np

from digitocr.errors import DigitOCRError
from digitocr.reading.results import pack_answers, unpack_answers

HELPER_DIED = "a reading worker process died (its own error, if it had one, is on stderr); the batch was not read"
MIN_SHARE = 32  # fewer pictures per process than this are read by the caller alone: shipping them costs more


def limit_threads(count: int = 1):
    """Let this process use ``count`` threads for torch's operators and numpy's BLAS -> a function that puts
    the previous limits back.

    torch is not imported for it (a second or two, where the ONNX reader needs none): if it is not loaded yet,
    OMP_NUM_THREADS says the limit to it, and to helper processes started from here, when it loads.
    """
    from threadpoolctl import threadpool_limits

    blas = threadpool_limits(count, user_api="blas")
    torch = sys.modules.get("torch")
    if torch is None:
        before_env = os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = str(count)

        def restore_env() -> None:
            blas.restore_original_limits()
            if before_env is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = before_env

        return restore_env
    before = torch.get_num_threads()
    torch.set_num_threads(count)

    def restore() -> None:
        blas.restore_original_limits()
        torch.set_num_threads(before)

    return restore


def _serve(connection, make_reader: Callable) -> None:
    """A helper process: ``make_reader()`` once, then ``read_each`` every share that arrives and send back
    ("ok", packed answers) or ("error", exception), until None or a closed pipe."""
    # Ctrl-C in a terminal reaches the whole process group: the owner handles it and stops the helpers (a helper
    # that took it too would print a traceback and die under a share the owner no longer waits for).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_threads(1)
    try:
        reader, failure = make_reader(), None
    except Exception as error:  # reported with every request, so the caller sees why
        reader, failure = None, DigitOCRError(f"a reading worker could not start: {error}")
    while True:
        try:
            pictures = connection.recv()
        except (EOFError, OSError):
            return
        if pictures is None:
            return
        try:
            if failure is not None:
                raise failure
            reply = ("ok", pack_answers(reader.read_each(list(pictures))))
        except Exception as error:  # anything unexpected: a bad picture is an answer in place, not an error
            reply = ("error", error)
        try:
            connection.send(reply)
        except Exception:  # an exception that cannot be pickled: its text still gets through
            connection.send(("error", DigitOCRError(f"{type(reply[1]).__name__}: {reply[1]}")))


def _shippable(pictures: list):
    """Same-shaped arrays (an MNIST-sized batch) travel as one stacked array: one pickle instead of hundreds."""
    first = pictures[0] if pictures else None
    if isinstance(first, np.ndarray) and all(
        isinstance(picture, np.ndarray) and picture.shape == first.shape and picture.dtype == first.dtype
        for picture in pictures
    ):
        return np.stack(pictures)
    return pictures


# Measured 2026-12-02 (benchmarks/library_swaps.py): a ProcessPoolExecutor reads as fast within noise, but its shares
# reach the helper 0.2-8 ms later (its feeder thread) and a helper's start-up error reaches only stderr: pipes stay.
class ReadingPool:
    """The caller and ``workers - 1`` helper processes reading shares of a batch with the same model and
    settings."""

    def __init__(self, workers: int, make_reader: Callable):
        """``make_reader``: a picklable callable (``functools.partial(Recognizer, ...)``) that builds, in each
        helper, a one-process reader with ``read_each``."""
        if workers < 2:
            raise ValueError(f"a reading pool needs at least 2 workers, got {workers}")
        self.workers = workers
        context = multiprocessing.get_context("spawn")
        self._helpers = []
        for _ in range(workers - 1):
            ours, theirs = context.Pipe()
            process = context.Process(target=_serve, args=(theirs, make_reader), daemon=True, name="digitocr-reader")
            process.start()
            theirs.close()
            self._helpers.append((ours, process))
        # Stop the helpers with the pool's owner, even when nobody calls close().
        self._finalizer = weakref.finalize(self, _stop, self._helpers)

    def read_each(self, pictures: list, read_here) -> list:
        """``read_each(pictures)`` split over the processes: the answers (a result, or the ImageError of a
        picture that cannot be read) in the pictures' order. ``read_here`` reads the first share in this
        process while the helpers read the rest.
        """
        first, *others = _split(pictures, min(self.workers, len(pictures) // MIN_SHARE))
        busy = [connection for (connection, _), share in zip(self._helpers, others)]
        try:
            for connection, share in zip(busy, others):
                connection.send(_shippable(share))
        except OSError:
            self.close()
            raise DigitOCRError(HELPER_DIED) from None
        try:
            answers = read_here(first)
        except Exception:  # unexpected: let the helpers finish, their answers are not needed
            for connection in busy:
                _receive(connection)
            raise
        except BaseException:  # interrupted: the helpers' answers would be mistaken for the next batch's
            self.close()
            raise
        replies = [_receive(connection) for connection in busy]
        for status, payload in replies:
            if status == "error":
                if isinstance(payload, _HelperDied):
                    self.close()
                raise payload
        return answers + [answer for _, packed in replies for answer in unpack_answers(packed)]

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def close(self) -> None:
        self._finalizer()


class _HelperDied(DigitOCRError):
    pass


def _receive(connection) -> tuple:
    try:
        return connection.recv()
    except (EOFError, OSError):
        return "error", _HelperDied(HELPER_DIED)


def _stop(helpers: list) -> None:
    for connection, _ in helpers:
        with contextlib.suppress(OSError):  # already gone
            connection.send(None)
    for connection, process in helpers:
        process.join(timeout=2)
        if process.is_alive():
            process.terminate()
        connection.close()


def _split(items: list, parts: int) -> list[list]:
    """``items`` in ``parts`` contiguous shares of sizes differing by at most one."""
    parts = max(1, parts)
    size, extra = divmod(len(items), parts)
    bounds = [index * size + min(index, extra) for index in range(parts + 1)]
    return [items[start:end] for start, end in itertools.pairwise(bounds)]
