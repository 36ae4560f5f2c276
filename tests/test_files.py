"""Atomic writes: a reader sees the old file or the whole new one; a failed write leaves nothing behind."""

from __future__ import annotations

import pytest

from digitocr.files import write_atomically


def test_a_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "model.pth"
    path.write_bytes(b"old")
    assert write_atomically(path, lambda temporary: temporary.write_bytes(b"new contents")) == path
    assert path.read_bytes() == b"new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pth"]


def test_a_failed_or_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "model.pth"
    path.write_bytes(b"old")

    def half_then_interrupted(temporary):
        temporary.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(path, half_then_interrupted)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pth"]
