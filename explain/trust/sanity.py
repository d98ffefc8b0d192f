"""Sanity checks for saliency maps (Adebayo et al. 2018): does the map depend on the model and on the class?

Cascading model randomisation re-initialises the network from the top, one block at a time, and compares each
method's map with the one of the trained network: a map that hardly changes while the weights become noise
shows the photo's edges, not what the network learned. Class sensitivity compares the map of the chosen class
with the map of a random other class: a map that does not move does not explain the class.
Both work on a copy of the network, so the model other pages (and other users) share is never touched.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from explain.errors import LensError
from explain.models import Backbone, anatomy_of


@dataclass(frozen=True)
class RandomisationStep:
    """The map after re-initialising the top `blocks_randomised` blocks (the last one: `block`)."""

    blocks_randomised: int
    block: str
    spearman: float | None  # rank correlation with the trained network's map (None: one of the maps is flat)
    ssim: float
    cam_map: np.ndarray


@dataclass(frozen=True)
class ClassSensitivity:
    """The map of another class and how much it agrees with the chosen class's map."""

    other_class: int
    other_label: str
    spearman: float | None
    cam_map: np.ndarray


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation of two maps; None when either is constant (no order to compare)."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    # here, not at the top: importing scipy.stats took 1.1 s of the Grad-CAM page's first visit
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity of two [0, 1] maps (1 = identical)."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(np.asarray(a, np.float64), np.asarray(b, np.float64), data_range=1.0))


def randomisation_blocks(backbone: Backbone) -> list[tuple[str, ...]]:
    """The network's blocks from the top (classifier first, stem last), each a tuple of module names."""
    try:
        anatomy = anatomy_of(backbone.base or backbone.name, backbone.model)
    except LensError:
        anatomy = None
    if anatomy is not None and anatomy.structured:
        groups = [(anatomy.head,), *([anatomy.post] if anatomy.post else []), *([anatomy.tail] if anatomy.tail else []),
                  *reversed(anatomy.blocks), *([anatomy.stem] if anatomy.stem else [])]
    else:  # an architecture we know nothing about: its top-level parts that hold weights
        groups = [(name,) for name, child in reversed(list(backbone.model.named_children())) if any(True for _ in child.parameters())]
    modules = dict(backbone.model.named_modules())
    groups = [tuple(n for n in g if n in modules and any(True for _ in modules[n].parameters())) for g in groups]
    return [g for g in groups if g]


def reinitialise(model: nn.Module, names: tuple[str, ...]) -> None:
    """Fresh random weights (each layer's own initialiser) and fresh BatchNorm statistics for the named modules."""
    for name in names:
        for module in model.get_submodule(name).modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()


def randomised_copies(backbone: Backbone, seed: int = 0):
    """Yield (k, block names, a Backbone whose top k blocks are re-initialised), k = 1, 2, …, on one private copy."""
    model = copy.deepcopy(backbone.model)
    twin = dataclasses.replace(backbone, model=model)
    with torch.random.fork_rng(devices=[]):  # leaves everyone else's random numbers as they were
        torch.manual_seed(seed)
        for k, names in enumerate(randomisation_blocks(backbone), start=1):
            reinitialise(model, names)
            yield k, names, twin


def other_class(num_classes: int, target: int, seed: int = 0) -> int:
    """A random class other than the target (the same one for the same seed)."""
    if num_classes < 2:
        raise LensError("A class-sensitivity check needs a model with at least two classes.")
    pick = int(np.random.default_rng(seed).integers(num_classes - 1))
    return pick + (pick >= target)
