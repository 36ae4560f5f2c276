"""`digitocr serve` in a child process, for tests, benchmarks and notebooks that need a real server."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the OS picks it; another process could still take it first)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@contextmanager
def running_server(
    model_path: str | Path | None = None, port: int | None = None, start_timeout: float = 120
) -> Iterator[str]:
    """Start `digitocr serve` on 127.0.0.1, wait until /api/health answers, yield its base URL, stop it after.

    ``model_path`` None: no --model, so it reads with what `digitocr serve` reads by default (the shipped reader)."""
    port = port or free_port()
    # A file, not a pipe: a pipe nobody reads would block a chatty server when full. Closed when it stops.
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "digitocr", "serve", "--port", str(port)]
        + ([] if model_path is None else ["--model", str(model_path)]),
        stderr=log,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + start_timeout  # importing torch on a busy machine can take a while
    try:
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/health", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    process.wait()
                    log.seek(0)
                    raise RuntimeError(f"digitocr serve did not start: {log.read().strip()}") from None
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
