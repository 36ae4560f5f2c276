"""Reading the pictures of concurrent requests together: one ``read_many`` per batch, off the event loop.

A request hands its picture to ``ReadBatcher.read`` and awaits the answer; decoding happens in the worker
thread too, one picture at a time, so a bad one fails alone. While one batch is being
read (in a worker thread), the pictures of requests arriving meanwhile wait and then go through the stages
as the next stack, so under load the per-picture cost falls to what a vectorised batch costs; a lone request
is read at once, without waiting for company.
"""

from __future__ import annotations

import asyncio

from starlette.concurrency import run_in_threadpool


class ReadBatcher:
    def __init__(self, recognizer, decode=None, max_batch: int = 64):
        """``decode``: encoded bytes -> a picture, raising ImageError (run in the worker thread, per picture)."""
        self.recognizer = recognizer
        self.decode = decode
        self.max_batch = max_batch
        self._waiting: list[tuple[object, asyncio.Future]] = []
        self._busy = False

    async def read(self, picture):
        """The recognizer's ``ReadResult`` for this picture (bytes when there is a ``decode``); its own
        ImageError if it cannot be read."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((picture, future))
        if not self._busy:
            self._busy = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:self.max_batch], self._waiting[self.max_batch:]
                try:
                    answers = await run_in_threadpool(self._read, [picture for picture, _ in batch])
                except Exception as error:  # a bug, not a bad picture: every request of the batch hears of it
                    answers = [error] * len(batch)
                for (_, future), answer in zip(batch, answers):
                    if future.done():  # the client went away
                        continue
                    if isinstance(answer, Exception):
                        future.set_exception(answer)
                    else:
                        future.set_result(answer)
        finally:
            self._busy = False

    def _read(self, pictures: list) -> list:
        answers = [self._decoded(picture) for picture in pictures]
        good = [index for index, answer in enumerate(answers) if not isinstance(answer, Exception)]
        try:
            for index, result in zip(good, self.recognizer.read_many([answers[i] for i in good])):
                answers[index] = result
        except Exception:  # one bad picture must not fail the others: read each alone, keeping its error
            for index in good:
                answers[index] = self._read_alone(answers[index])
        return answers

    def _decoded(self, picture):
        try:
            return self.decode(picture) if self.decode else picture
        except Exception as error:
            return error

    def _read_alone(self, picture):
        try:
            return self.recognizer.read(picture)
        except Exception as error:
            return error
