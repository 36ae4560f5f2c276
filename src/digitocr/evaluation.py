"""Metrics of a trained model on a labelled split: accuracy, per-class precision/recall/F1, confusion matrix.

Returns plain numbers (JSON-ready); printing is the caller's business. scikit-learn computes the metrics.
"""

from __future__ import annotations

import torch
from torch import nn

from digitocr import distributed
from digitocr.config import CLASS_NAMES
from digitocr.data import Split
from digitocr.training import predict_logits


def evaluate(model: nn.Module, split: Split, batch_size: int = 4096) -> dict:
    """``{"test_accuracy", "per_class": {digit: {precision, recall, f1, support}}, "confusion_matrix"}``.

    ``confusion_matrix[i][j]`` counts images of true class i predicted as j.
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    # Under torchrun each rank predicts its shard; the metrics come from all ranks' predictions together.
    index = distributed.shard(torch.arange(len(split), device=split.labels.device), drop_remainder=False)
    predictions = distributed.gather(predict_logits(model, split.images[index], batch_size).argmax(1).cpu().numpy())
    truth = distributed.gather(split.labels[index].cpu().numpy())
    labels = list(range(len(CLASS_NAMES)))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predictions, labels=labels, zero_division=0)
    per_class = {
        name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
               "support": int(support[i])}
        for i, name in enumerate(CLASS_NAMES)
    }
    return {
        "test_accuracy": float((predictions == truth).mean()) if len(truth) else float("nan"),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(truth, predictions, labels=labels).tolist(),
    }
