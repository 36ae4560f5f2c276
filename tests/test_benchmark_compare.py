"""`python benchmarks/compare.py --quick` runs every recipe on a tiny budget and writes the Markdown table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_compare_writes_the_table(mnist_root, tmp_path):
    out = tmp_path / "compare.md"
    finished = subprocess.run(
        [sys.executable, "benchmarks/compare.py", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    table = out.read_text()
    assert "| recipe |" in table and "QUICK MODE" in table
    for name in (
        "course-notebook replica",
        "PyTorch examples/mnist",
        "scikit-learn",
        "digitocr mlp fast",
        "digitocr mlp accurate",
        "digitocr cnn fast",
        "digitocr cnn accurate",
    ):
        assert name in table
    rows = json.loads(out.with_suffix(".json").read_text())
    assert all(0 <= accuracy <= 1 for row in rows for accuracy in row["accuracies"])
    assert all(row["images_per_second"] > 0 for row in rows)
