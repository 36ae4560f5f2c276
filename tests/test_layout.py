"""The package's one-way flow (STYLE.md): a module imports only from modules above it in ``FLOW``."""

from __future__ import annotations

import ast
from pathlib import Path

import digitocr

PACKAGE = Path(digitocr.__file__).parent
# Top to bottom; a module may import its own layer and those above it. The package root holds only the version
# and the lazily imported public names, so anything may take __version__ from it.
FLOW = [
    "errors", "files", "machine", "jsonable", "config", "catalog", "ctc",
    "data.sources", "data.augment", "data.memory", "data.lines", "data",
    "models", "presets", "ema", "devices", "distributed", "inference", "training", "evaluation", "modelfile",
    "plots", "pipeline", "reports",
    "tune.space", "tune.study", "tune.results", "tune.figures", "tune.search", "tune", "export",
    "reading.stages", "reading.images", "reading.segment", "reading.candidates", "reading.lines",
    "reading.onnx_backend", "reading.backends", "reading.results", "reading.transcribe", "reading.choice",
    "reading.parallel", "reading.recognizer", "reading",
    "serve", "cli", "__main__", "testing",
]  # fmt: skip


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """The digitocr modules a file imports, at its top or inside functions (``from digitocr import x``: x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "digitocr":
            base = node.module.removeprefix("digitocr").lstrip(".")
            for alias in node.names:
                candidate = f"{base}.{alias.name}".lstrip(".")
                is_module = (PACKAGE / (candidate.replace(".", "/") + ".py")).is_file() or (
                    PACKAGE / candidate.replace(".", "/")
                ).is_dir()
                found.add(candidate if is_module else base)
        elif isinstance(node, ast.Import):
            found |= {
                alias.name.removeprefix("digitocr.") for alias in node.names if alias.name.startswith("digitocr.")
            }
    return found - {""}


def layer(module: str) -> int:
    matches = [index for index, entry in enumerate(FLOW) if module == entry or module.startswith(entry + ".")]
    assert matches, f"{module} is not placed in FLOW"
    return max(matches, key=lambda index: len(FLOW[index]))


def test_every_module_imports_only_from_above_it():
    backwards = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        if not module:
            continue  # the package root
        for other in imported(path):
            if layer(other) > layer(module):
                backwards.append(f"{module} imports {other}")
    assert backwards == []


def test_the_runtime_never_imports_the_test_helpers():
    """digitocr.testing (test pictures, a server in a subprocess) is for tests, benchmarks and the notebook."""
    importers = [
        module_name(path)
        for path in sorted(PACKAGE.rglob("*.py"))
        if module_name(path).split(".")[0] != "testing"
        and any(other.split(".")[0] == "testing" for other in imported(path))
    ]
    assert importers == []


def test_models_import_only_config_and_evaluation_not_the_trainer():
    assert imported(PACKAGE / "models.py") <= {"config", "errors"}
    assert "training" not in imported(PACKAGE / "evaluation.py")
