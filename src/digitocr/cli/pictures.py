"""Which files `digitocr predict` reads: files as given, and every picture in a folder and its subfolders.

Argument handling only (the server and the library take pictures, not folders), so it lives with the CLI.
"""

from __future__ import annotations

import os
from pathlib import PurePath

from digitocr.errors import DigitOCRError

# The formats the reader is tested on (reading/images.py decodes anything Pillow opens; these are what a folder
# of scans or photos holds). Matched case-insensitively: cameras write .JPG.
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def find_pictures(arguments: list[str], pattern: str | None = None) -> list[str]:
    """Files as given, in order; each folder replaced by the files below it that match ``pattern`` (a glob matched
    from the right against the path below the folder, case-insensitively; default: the picture suffixes), folder
    by folder in sorted order. Raises DigitOCRError for a folder with none."""
    found = []
    for argument in arguments:
        if not os.path.isdir(argument):
            found.append(argument)  # a missing file is the reader's error line, as for any unreadable picture
            continue
        inside = pictures_in(argument, pattern)
        if not inside:
            looked_for = f"files matching {pattern!r}" if pattern else f"pictures ({', '.join(PICTURE_SUFFIXES)})"
            raise DigitOCRError(f"no {looked_for} in {argument} or its subfolders")
        found += inside
    return found


def pictures_in(folder: str, pattern: str | None = None) -> list[str]:
    """The matching files below ``folder`` as ``folder/sub/name`` paths: a folder's files (sorted by name) before
    its subfolders (sorted too), so a run over the same tree always reads in the same order."""
    pattern = pattern.lower() if pattern else None

    def matches(relative: str) -> bool:
        if pattern is None:
            return relative.lower().endswith(PICTURE_SUFFIXES)
        return PurePath(relative.lower()).match(pattern)

    def refuse(error: OSError) -> None:  # os.walk skips unreadable folders silently by default
        raise DigitOCRError(f"cannot read the folder {error.filename}: {error.strerror or error}")

    paths = []
    for root, folders, files in os.walk(folder, onerror=refuse):  # links to folders are not followed: no loops
        folders.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            if matches(os.path.relpath(path, folder)):
                paths.append(path)
    return paths
