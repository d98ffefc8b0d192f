"""How well a model does on a labelled set: accuracy, loss, confusion matrix, accuracy per class."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from explain.images import prepare
from explain.models import Backbone
from explain.transfer.datasets import ImageSet, align_classes


@dataclass(frozen=True)
class Evaluation:
    """Accuracy of a model on one labelled set."""

    accuracy: float
    loss: float
    confusion: np.ndarray  # (C, C): rows true class, columns predicted class
    per_class: dict[str, float]  # accuracy of each class (nan when the set has none of it)
    predictions: tuple[int, ...]
    labels: tuple[int, ...]


def evaluation(logits: torch.Tensor, labels: torch.Tensor, classes: tuple[str, ...]) -> Evaluation:
    """The Evaluation of logits (N, C) against labels (N,)."""
    n = len(classes)
    loss = float(F.cross_entropy(logits, labels)) if len(labels) else float("nan")
    pred = logits.argmax(1)
    confusion = np.zeros((n, n), dtype=np.int64)
    for t_, p_ in zip(labels.tolist(), pred.tolist()):
        confusion[t_, p_] += 1
    totals = confusion.sum(1)
    per_class = {c: (float(confusion[i, i] / totals[i]) if totals[i] else float("nan")) for i, c in enumerate(classes)}
    acc = float((pred == labels).float().mean()) if len(labels) else float("nan")
    return Evaluation(acc, loss, confusion, per_class, tuple(pred.tolist()), tuple(labels.tolist()))


@torch.no_grad()
def evaluate(backbone: Backbone, ds: ImageSet, batch_size: int | None = None) -> Evaluation:
    """Accuracy of a backbone on a labelled set, through the same preprocessing as Classify."""
    if list(ds.classes) != list(backbone.categories):
        ds = align_classes(ds, tuple(backbone.categories))
    backbone.model.eval()
    batch_size = batch_size or backbone.micro_batch
    logits = []
    for start in range(0, len(ds), batch_size):
        batch = torch.cat([prepare(img, backbone.preprocess).tensor for img in ds.images[start : start + batch_size]])
        logits.append(backbone.logits(batch).float().cpu())
    out = torch.cat(logits) if logits else torch.zeros(0, len(ds.classes))
    return evaluation(out, torch.tensor(ds.labels, dtype=torch.long), tuple(backbone.categories))
