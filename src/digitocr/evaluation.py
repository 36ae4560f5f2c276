"""Metrics of a trained model on a labelled split: accuracy, per-class precision/recall/F1, confusion matrix.

Returns plain numbers (JSON-ready); printing is the caller's business. Every metric comes from the confusion
matrix (one bincount), not from scikit-learn: importing sklearn.metrics costs ~1.1 s (it pulls scipy), a quarter
of a default `digitocr train`; a reference test checks the numbers against scikit-learn's.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from digitocr import distributed
from digitocr.config import CLASS_NAMES
from digitocr.data import Split
from digitocr.inference import predict_logits


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
