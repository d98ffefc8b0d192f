"""Classifying photos: the one pipeline the Classify page, the CLI and the attack checks share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explain.images import prepare
from explain.models import Backbone


@dataclass(frozen=True)
class ClassScore:
    index: int
    label: str
    prob: float


def top_classes(backbone: Backbone, probs: torch.Tensor, k: int = 5) -> list[ClassScore]:
    """The k most probable classes of one probability vector."""
    k = max(1, min(int(k), probs.numel()))
    values, indices = torch.topk(probs.float().cpu(), k)
    return [ClassScore(int(i), backbone.categories[int(i)], float(v)) for v, i in zip(values, indices)]


@torch.no_grad()
def predict_probs(backbone: Backbone, batch01: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """Softmax probabilities (N, classes) for a batch of [0, 1] images."""
    batch_size = batch_size or backbone.micro_batch
    out = [backbone.logits(batch01[i : i + batch_size]).softmax(1).cpu() for i in range(0, len(batch01), batch_size)]
    return torch.cat(out)


def classify_images(
    backbone: Backbone, images: list[np.ndarray], k: int = 5, interpolation: str | None = None
) -> list[list[ClassScore]]:
    """Top-k classes for each RGB uint8 photo, through the backbone's own preprocessing."""
    if not images:
        return []
    batch = torch.cat([prepare(img, backbone.preprocess, interpolation).tensor for img in images])
    probs = predict_probs(backbone, batch)
    return [top_classes(backbone, p, k) for p in probs]
