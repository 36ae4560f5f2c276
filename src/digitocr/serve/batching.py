"""Reading the pictures of concurrent requests together: one ``read_many`` per batch, off the event loop.

A request hands its picture to ``ReadBatcher.read`` and awaits the answer. A batch is read with
``Recognizer.read_each`` in a worker thread, decoding included, so a bad picture fails alone. While one batch
is being read, the pictures of requests arriving meanwhile wait and then go through the stages as the next
stack, so under load the per-picture cost falls to what a vectorised batch costs; a lone request is read at
once, without waiting for company.
"""

from __future__ import annotations

import asyncio

from starlette.concurrency import run_in_threadpool


class ReadBatcher:
    def __init__(self, recognizer, max_batch: int = 64):
        self.recognizer = recognizer
        self.max_batch = max_batch
        self._waiting: list[tuple[object, asyncio.Future]] = []
        self._busy = False

    async def read(self, picture):
        """The recognizer's ``ReadResult`` for this picture (encoded bytes or anything ``read`` takes); its own
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
                batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
                try:
                    answers = await run_in_threadpool(self.recognizer.read_each, [picture for picture, _ in batch])
                except Exception as error:  # a bug, not a bad picture (those come back in place): all hear of it
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
