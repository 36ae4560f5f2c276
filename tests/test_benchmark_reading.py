"""`python benchmarks/reading_accuracy.py` reads its categories with the shipped reader and writes its figures,
with, for pictures of several variants (those with no digits), how many of each it misread."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from digitocr.testing.pictures import EMPTY_PICTURES

ROOT = Path(__file__).resolve().parents[1]
PICTURES = 21  # three of each kind of empty picture, on average


def test_the_reading_benchmark_writes_its_figures_and_the_misread_variants(mnist_root, tmp_path):
    out = tmp_path / "reading.json"
    command = ["benchmarks/reading_accuracy.py", "--kinds", "number,edge", "--count", str(PICTURES)]
    finished = subprocess.run(
        [sys.executable, *command, "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
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
