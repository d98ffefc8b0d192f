"""Classifying photos: the one pipeline the Classify page, the CLI and the attack checks share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explain.errors import LensError
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


def class_rank(backbone: Backbone, image: np.ndarray, index: int) -> tuple[int, float]:
    """(rank, probability) of one class for an RGB uint8 image, through the backbone's own preprocessing (1 = top class)."""
    probs = predict_probs(backbone, prepare(image, backbone.preprocess).tensor)[0]
    return int((probs > probs[index]).sum()) + 1, float(probs[index])


@dataclass(frozen=True)
class Verdict:
    """What a second network says about a clean photo and its adversarial version."""

    before: list[ClassScore]
    after: list[ClassScore]
    fooled: bool  # targeted: it now says the goal class; untargeted: its top class changed


def second_network_verdicts(
    other: Backbone, clean: list[np.ndarray], adversarial: list[np.ndarray], goals: list[int], targeted: bool, k: int = 5
) -> list[Verdict]:
    """Does each adversarial image, made for another network, fool `other` too? Both images go through `other`'s own
    preprocessing, as a user's upload would; goals are the target classes (targeted) or ignored (untargeted)."""
    if not len(clean) == len(adversarial) == len(goals):
        raise LensError(f"Give one clean image, one adversarial image and one goal each ({len(clean)}, {len(adversarial)}, {len(goals)}).")
    before = classify_images(other, list(clean), k)
    after = classify_images(other, list(adversarial), k)
    return [
        Verdict(b, a, a[0].index == goal if targeted else a[0].index != b[0].index)
        for b, a, goal in zip(before, after, goals)
    ]
