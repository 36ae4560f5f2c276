"""The CSV file `digitocr predict --csv OUT` writes: one row per picture, appended as results come, continued by
``--resume`` (the pictures already in it are not read again; a row torn by a kill is cut off and read again)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from digitocr.errors import DigitOCRError, ImageError

HEADER = ["file", "text", "confidences", "error"]
# Paths come from the file system, which does not promise UTF-8: undecodable bytes travel through as they came.
ENCODING = {"encoding": "utf-8", "errors": "surrogateescape"}


class ResultsTable:
    """OUT as the run finds it (``done``: the files in its complete rows) and, once ``open``, rows appended to it."""

    def __init__(self, path: str | os.PathLike, resume: bool):
        self.path = Path(path)
        self.done: set[str] = set()
        self.written = 0  # rows this run appended
        self._keep = 0  # bytes of OUT that are whole rows: what is after them was torn by a kill
        if self.path.exists():
            if not resume:
                raise DigitOCRError(f"{self.path} exists; --resume to continue it or remove it")
            self.done, self._keep = _complete_rows(self.path)
        self._file = None

    def open(self) -> None:
        """Cut a torn last row off and start appending (with the header, if OUT has none yet)."""
        try:
            with open(self.path, "ab") as file:  # makes OUT if it is not there yet
                file.truncate(self._keep)
            self._file = open(self.path, "a", newline="", **ENCODING)  # noqa: SIM115 (open batch after batch)
        except OSError as error:
            raise DigitOCRError(f"cannot write {self.path}: {error.strerror or error}") from None
        self._writer = csv.writer(self._file, lineterminator="\n")
        if not self._keep:
            self._writer.writerow(HEADER)

    def write(self, names: list[str], answers: list) -> None:
        """One row per picture, flushed: what a kill can lose is the rows of the batch being read."""
        for name, answer in zip(names, answers):
            if isinstance(answer, ImageError):
                self._writer.writerow([name, "", "", str(answer)])
            else:
                confidences = " ".join(f"{digit.confidence:.4f}" for digit in answer.digits)
                self._writer.writerow([name, answer.text, confidences, ""])
        self._file.flush()
        self.written += len(names)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _complete_rows(path: Path) -> tuple[set[str], int]:
    """The files in OUT's whole rows and the bytes those rows take. A row is whole once its newline is written
    outside quotes (a path or an error may hold a quoted newline): an even count of quote characters so far."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DigitOCRError(f"cannot read {path}: {error.strerror or error}") from None
    keep = start = quotes = 0
    while (newline := data.find(b"\n", start)) != -1:
        quotes += data.count(b'"', start, newline)
        start = newline + 1
        if quotes % 2 == 0:
            keep = start
    rows = list(csv.reader(io.StringIO(data[:keep].decode(**ENCODING), newline="")))
    if (rows and rows[0] != HEADER) or any(len(row) != len(HEADER) for row in rows):
        raise DigitOCRError(f"{path} is not a CSV written by digitocr predict (its columns are not {','.join(HEADER)})")
    return {row[0] for row in rows[1:]}, keep
