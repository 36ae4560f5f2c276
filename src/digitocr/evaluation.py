"""Metrics of a trained model on a labelled split: accuracy, per-class precision/recall/F1, confusion matrix; for
the line model, exact-line accuracy on lines made of the split's digits.

Returns plain numbers (JSON-ready); printing is the caller's business. Every metric comes from the confusion
matrix (one bincount), not from scikit-learn: importing sklearn.metrics costs ~1.1 s (it pulls scipy), a quarter
of a default `digitocr train`; a reference test checks the numbers against scikit-learn's.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch
from torch import nn

from digitocr import ctc, distributed
from digitocr.config import CLASS_NAMES, LinesConfig
from digitocr.data import Split
from digitocr.data.lines import fixed_lines
from digitocr.inference import line_columns, predict_logits


def evaluate(model: nn.Module, split: Split, batch_size: int = 4096) -> dict:
    """``{"test_accuracy", "per_class": {digit: {precision, recall, f1, support}}, "confusion_matrix"}``.

    ``confusion_matrix[i][j]`` counts images of true class i predicted as j.
    """
    # Under torchrun each rank predicts its shard; the metrics come from all ranks' predictions together.
    index = distributed.shard(torch.arange(len(split), device=split.labels.device), drop_remainder=False)
    predictions = distributed.gather(predict_logits(model, split.images[index], batch_size).argmax(1).cpu().numpy())
    truth = distributed.gather(split.labels[index].cpu().numpy())
    classes = len(CLASS_NAMES)
    matrix = np.bincount(truth * classes + predictions, minlength=classes * classes).reshape(classes, classes)
    hits, support, predicted = np.diag(matrix), matrix.sum(1), matrix.sum(0)
    # As scikit-learn with zero_division=0: a class never predicted (or never present) scores 0, not NaN.
    precision = _ratio(hits, predicted)
    recall = _ratio(hits, support)
    f1 = _ratio(2 * hits, predicted + support)  # = 2pr / (p + r)
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(CLASS_NAMES)
    }
    return {
        "test_accuracy": float(hits.sum() / len(truth)) if len(truth) else float("nan"),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
    }


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros(len(numerator)), where=denominator > 0)


TEST_LINES_SEED = 20_261_202  # one fixed set of test lines for every line model, so their figures compare


def evaluate_lines(model: nn.Module, split: Split, config: LinesConfig, batch_size: int = 500) -> dict:
    """A line model on ``config.test_lines`` lines of ``split``'s digits (the test split for a final report):
    ``{"test_accuracy": share of lines read exactly, "digit_error_rate": edits per true digit,
    "per_length": {digits: exact share}, "lines": count}``."""
    right, edits, digits = Counter(), 0, 0
    total = Counter()
    for batch in fixed_lines(split, config.test_lines, config, TEST_LINES_SEED, chunk=batch_size):
        probabilities, columns = line_columns(model, batch.images, batch.widths)
        for read, truth in zip(ctc.texts(probabilities, columns), batch.texts()):
            total[len(truth)] += 1
            right[len(truth)] += read == truth
            edits += edit_distance(read, truth)
            digits += len(truth)
    lines = sum(total.values())
    return {
        "test_accuracy": sum(right.values()) / lines if lines else float("nan"),
        "digit_error_rate": edits / digits if digits else float("nan"),
        "per_length": {str(length): right[length] / total[length] for length in sorted(total)},
        "lines": lines,
    }


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions turning ``a`` into ``b``."""
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, 1):
        current = [i]
        for j, other in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other)))
        previous = current
    return previous[-1]
