"""Writing a file so that nobody ever sees half of it: the data cache, model files and checkpoints all use it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: str | Path, write: Callable[[Path], object]) -> Path:
    """``write(temporary)`` a file beside ``path``, then rename it over ``path`` in one step -> ``path``.

    A rename within a folder is atomic, so a reader (or a second process) finds the old file or the whole new
    one, never a torn one; if writing fails or is interrupted, the temporary file is removed and ``path`` is
    left as it was.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path
