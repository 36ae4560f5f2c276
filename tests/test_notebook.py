"""The guided notebook: committed with the outputs of a real run, and it still runs top to bottom headless."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "handwritten_digit_recognition.ipynb"
STEPS = [
    "Step 1 — Dataset loading and preprocessing",
    "Step 2 — Visualisation and exploration",
    "Step 3 — The neural network",
    "Step 4 — Evaluation and tuning",
    "Step 5 — Saving the model",
]


def read_notebook() -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    return notebook


def printed(notebook: nbformat.NotebookNode) -> str:
    """Everything the code cells wrote to stdout."""
    return "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "stream" and output.name == "stdout"
    )


def check_outputs(notebook: nbformat.NotebookNode) -> None:
    """A complete, error-free run: cells executed in order, figures drawn, ≥ 98 % test accuracy, same reload."""
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    errors = [output for cell in code for output in cell.outputs if output.output_type == "error"]
    assert not errors, errors[0].get("evalue")
    figures = sum("image/png" in output.get("data", {}) for cell in code for output in cell.outputs)
    assert figures >= 9  # samples, classes, histogram, means, hard ones, curves, confusion, mistakes, tuning
    text = printed(notebook)
    test_accuracy = float(re.search(r"TEST ACCURACY (\d+\.\d+)%", text).group(1))
    assert test_accuracy >= 98.0
    assert "identical logits on all 10,000 test images: True" in text


def test_notebook_walks_the_five_steps_in_order():
    notebook = read_notebook()
    headings = [
        line
        for cell in notebook.cells
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
        if line.startswith("## ")
    ]
    assert headings == [f"## {step}" for step in STEPS]
    assert notebook.metadata.kernelspec.name == "python3"


def test_notebook_is_committed_with_the_outputs_of_a_real_run():
    check_outputs(read_notebook())


def test_the_notebook_kernel_is_installed():
    # nbclient and `jupyter notebook` start the kernel named in the notebook: ipykernel's python3.
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    assert "ipykernel_launcher" in spec.argv


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(tmp_path):
    from nbclient import NotebookClient

    import digitocr

    notebook = read_notebook()
    # The working folder is a temporary one: trained_model.pth, the notebook's only file, lands there.
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    check_outputs(notebook)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["trained_model.pth"]
    stored = digitocr.read_model_file(tmp_path / "trained_model.pth")
    assert stored.metadata["metrics"]["test_accuracy"] >= 0.98
