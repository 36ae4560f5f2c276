"""`python benchmarks/reading_accuracy.py` reads its categories with the shipped reader and writes its figures,
with, for pictures of several variants (those with no digits), how many of each it misread, and each picture's
reading; `python benchmarks/paired.py` compares two runs' readings picture by picture."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from digitocr.testing.pictures import EMPTY_PICTURES

ROOT = Path(__file__).resolve().parents[1]
PICTURES = 21  # three of each kind of empty picture, on average


def run(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *arguments], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_the_reading_benchmark_writes_its_figures_and_the_misread_variants(mnist_root, tmp_path):
    out, readings = tmp_path / "reading.json", tmp_path / "readings.json"
    command = ["benchmarks/reading_accuracy.py", "--kinds", "number,edge", "--count", str(PICTURES)]
    finished = run(*command, "--json", str(out), "--readings", str(readings))
    assert finished.returncode == 0, finished.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert set(figures["digitocr"]) == {"number", "edge"} and figures["count"] == PICTURES
    variants = figures["misread_by_variant"]
    assert list(variants) == ["edge"]  # numbers are of one variant: nothing to break down
    assert set(variants["edge"]) <= set(EMPTY_PICTURES)
    assert sum(tally["pictures"] for tally in variants["edge"].values()) == PICTURES
    misread = sum(tally["misread"] for tally in variants["edge"].values())
    assert misread == round((1 - figures["digitocr"]["edge"]) * PICTURES)
    assert "# edge, misread by variant: " in finished.stdout
    drawn = json.loads(readings.read_text())
    assert list(drawn["readings"]) == ["number", "edge"]
    for kind, pictures in drawn["readings"].items():
        assert len(pictures) == PICTURES
        exact = sum(picture["read"] == picture["text"] for picture in pictures) / PICTURES
        assert exact == pytest.approx(figures["digitocr"][kind])
    assert all(picture["text"] == "" for picture in drawn["readings"]["edge"])
    itself = run("benchmarks/paired.py", str(readings), str(readings))
    assert itself.returncode == 0, itself.stderr
    assert f"| number | {PICTURES} |" in itself.stdout and "| 0 | 0 | 1.000 |" in itself.stdout


def readings_file(path: Path, reads: list[str], seed: int = 1) -> str:
    """A readings file of ten pictures of "7", read as ``reads``."""
    pictures = [{"text": "7", "read": read} for read in reads]
    drawn = {"model": path.stem, "count": 10, "seed": seed, "validation": True, "readings": {"number": pictures}}
    path.write_text(json.dumps(drawn))
    return str(path)


def test_paired_counts_the_pictures_only_one_run_read_and_tests_the_split(tmp_path):
    # A reads all ten; B misses five of them: 5 against 0, two-sided exact p = 2 / 2**5.
    a = readings_file(tmp_path / "a.json", ["7"] * 10)
    b = readings_file(tmp_path / "b.json", ["7"] * 5 + ["1"] * 5)
    finished = run("benchmarks/paired.py", a, b)
    assert finished.returncode == 0, finished.stderr
    assert "| number | 10 | 100.0% | 50.0% | -50.0 | 5 | 0 | 0.062 |" in finished.stdout
    # Pictures drawn with another seed are other pictures: no comparison.
    other = readings_file(tmp_path / "other.json", ["7"] * 10, seed=2)
    refused = run("benchmarks/paired.py", a, other)
    assert refused.returncode != 0 and "different pictures (seed differ)" in refused.stderr


def test_an_output_in_a_missing_folder_is_refused_before_the_run(tmp_path):
    refused = run("benchmarks/reading_accuracy.py", "--readings", str(tmp_path / "missing" / "readings.json"))
    assert refused.returncode == 2 and "--readings" in refused.stderr and "no such folder" in refused.stderr
    assert "Traceback" not in refused.stderr
