"""evaluate()'s metrics against scikit-learn's, the reference implementation they replace on the train path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support
from torch import nn

from digitocr.data import Split, read_mnist, to_float_images
from digitocr.evaluation import evaluate
from digitocr.inference import predict_logits
from digitocr.modelfile import load_model


class PixelSaysClass(nn.Module):
    """Predicts the class written into each image's top-left pixel (value / 255): predictions set by the test."""

    def __init__(self):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))  # evaluate() finds the device through a parameter

    def forward(self, x):
        return nn.functional.one_hot((x[:, 0, 0, 0] * 255).round().long(), 10).float() + self.anchor


def assert_matches_sklearn(metrics: dict, truth: np.ndarray, predictions: np.ndarray) -> None:
    labels = list(range(10))
    precision, recall, f1, support = precision_recall_fscore_support(truth, predictions, labels=labels, zero_division=0)
    assert metrics["test_accuracy"] == accuracy_score(truth, predictions)
    assert metrics["confusion_matrix"] == confusion_matrix(truth, predictions, labels=labels).tolist()
    for digit in labels:
        scores = metrics["per_class"][str(digit)]
        assert scores["precision"] == pytest.approx(precision[digit], abs=1e-12)
        assert scores["recall"] == pytest.approx(recall[digit], abs=1e-12)
        assert scores["f1"] == pytest.approx(f1[digit], abs=1e-12)
        assert scores["support"] == support[digit]


def test_metrics_match_sklearn_with_absent_and_never_predicted_classes():
    rng = np.random.default_rng(0)
    truth = rng.choice([0, 1, 2, 3, 4, 5, 6, 8], 500)  # 7 and 9 never occur
    predictions = np.where(rng.random(500) < 0.7, truth, rng.choice([0, 1, 2, 7], 500))  # 9 never predicted
    images = torch.zeros(500, 1, 28, 28)
    images[:, 0, 0, 0] = torch.from_numpy(predictions).float() / 255
    metrics = evaluate(PixelSaysClass(), Split(images, torch.from_numpy(truth)))
    assert metrics["per_class"]["9"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert metrics["per_class"]["7"]["precision"] == 0.0 and metrics["per_class"]["7"]["support"] == 0
    assert_matches_sklearn(metrics, truth, predictions)


@pytest.mark.slow
def test_metrics_of_a_trained_model_on_the_real_test_set_match_sklearn(trained_model_path, mnist_root):
    model = load_model(trained_model_path)
    images, labels = read_mnist(mnist_root, train=False, log=lambda message: None)
    test = Split(to_float_images(images), labels)
    metrics = evaluate(model, test)
    predictions = predict_logits(model, test.images).argmax(1).numpy()  # the batches evaluate() takes
    assert metrics["test_accuracy"] >= 0.98
    assert_matches_sklearn(metrics, labels.numpy(), predictions)
