"""Where the stem, the blocks and the classifier of each registry architecture are (for freezing and new heads)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from explain.errors import LensError
from explain.hooks import attached
from explain.models.registry import build_architecture, get_spec


@dataclass(frozen=True)
class Anatomy:
    """Module names in forward order: stem, blocks (each a run of modules), tail, flatten, post, head."""

    stem: tuple[str, ...]
    blocks: tuple[tuple[str, ...], ...]
    tail: tuple[str, ...]  # after the last block, before flattening (pooling, last conv)
    post: tuple[str, ...]  # after flattening, before the head (dense layers of VGG-style classifiers)
    head: str  # the final Linear layer, replaced by the new head

    @property
    def structured(self) -> bool:
        return bool(self.blocks)


def anatomy_of(base: str, model: nn.Module | None = None) -> Anatomy:
    """Where the blocks and the classifier are in a registry architecture (without a model: the registry's own, built
    once per name on the meta device and remembered: building it took 0.45 s of every Transfer page's first visit)."""
    if model is None:
        return _registry_anatomy(base)
    return _anatomy(base, model)


@functools.cache
def _registry_anatomy(base: str) -> Anatomy:
    get_spec(base)  # an unknown name fails here, before building anything
    with torch.device("meta"):
        return _anatomy(base, build_architecture(base))


def _anatomy(base: str, model: nn.Module) -> Anatomy:
    spec = get_spec(base)
    if spec.family == "efficientnet-lite":
        blocks = tuple((f"blocks.{i}",) for i in range(len(model.blocks)))
        return Anatomy(("conv_stem", "bn1"), blocks, ("conv_head", "bn2", "global_pool"), (), "classifier")
    if base.startswith("resnet"):
        return Anatomy(("conv1", "bn1", "relu", "maxpool"), tuple((f"layer{i}",) for i in range(1, 5)), ("avgpool",), (), "fc")
    features = getattr(model, "features", None)
    classifier = getattr(model, "classifier", None)
    if isinstance(features, nn.Sequential) and isinstance(classifier, nn.Sequential):
        names = [f"features.{n}" for n, _ in features.named_children()]
        if any(isinstance(m, nn.MaxPool2d) for m in features):
            blocks, run = [], []
            for name, module in zip(names, features):
                run.append(name)
                if isinstance(module, nn.MaxPool2d):
                    blocks.append(tuple(run))
                    run = []
            if run:
                blocks.append(tuple(run))
        else:
            blocks = [(n,) for n in names]
        cls_names = [f"classifier.{n}" for n, _ in classifier.named_children()]
        tail = ("avgpool",) if hasattr(model, "avgpool") else ()
        return Anatomy((), tuple(blocks), tail, tuple(cls_names[:-1]), cls_names[-1])
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise LensError(f"Cannot find the classifier layer of '{base}'.")
    return Anatomy((), (), (), (), linears[-1])


def run_modules(model: nn.Module, names: Iterable[str], x: torch.Tensor) -> torch.Tensor:
    """Feed x through the named submodules in order (a slice of the network, e.g. its frozen part)."""
    for name in names:
        x = model.get_submodule(name)(x)
    return x


def set_submodule(model: nn.Module, path: str, module: nn.Module) -> None:
    """Replace the submodule at a dotted path (the classifier, by a new head)."""
    parent, _, child = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


class _Captured(Exception):
    def __init__(self, value: torch.Tensor):
        super().__init__("captured")
        self.value = value


def features_by_capture(model: nn.Module, head: str, x: torch.Tensor) -> torch.Tensor:
    """The input of the head layer, for architectures without a known block structure."""

    def grab(_module, inputs):
        raise _Captured(inputs[0])

    try:
        with attached(pre=[(model.get_submodule(head), grab)]):
            model(x)
    except _Captured as captured:
        return captured.value
    raise LensError("The network never reached its classifier layer.")


