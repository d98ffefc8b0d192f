"""A loaded network ready for inference: the model, its class names, its preprocessing, its device."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import nn

from explain.errors import LensError
from explain.images import Preprocess, normalize
from explain.models.registry import REGISTRY


@dataclass
class Backbone:
    """A loaded network ready for inference, with its labels and preprocessing."""

    name: str
    model: nn.Module
    categories: list[str]
    preprocess: Preprocess
    device: torch.device
    source: str  # one of STATUSES, or "trained" for a fine-tuned model
    base: str = ""  # registry name of the architecture
    cam_layer: str = ""
    extra: dict = field(default_factory=dict)

    def normalize(self, x01: torch.Tensor) -> torch.Tensor:
        return normalize(x01, self.preprocess)

    def logits(self, x01: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of images in [0, 1], shape (N, 3, H, W)."""
        return self.model(self.normalize(x01.to(self.device)))

    @property
    def micro_batch(self) -> int:
        """How many images to push through the network at once for inference.

        On CPU, small: an activation over glibc's 32 MB mmap ceiling is mapped and unmapped on every
        call, and those page faults made batches of 32 2.3x slower per image than batches of 4
        (EfficientNet-Lite0, 224 px, 2 cores). Four 224 px images keep the largest activation near 20 MB.
        """
        if self.device.type != "cpu":
            return 64
        return max(1, round(4 * (224 / max(1, self.preprocess.input_size)) ** 2))

    @property
    def num_classes(self) -> int:
        return len(self.categories)

    def class_index(self, name_or_index: str | int) -> int:
        """Resolve a class given by index or (part of) its name."""
        return resolve_class(self.categories, name_or_index)


def resolve_class(categories: list[str], name_or_index: str | int) -> int:
    """Index of a class given as an int, a numeric string, or a name (exact, then unique substring)."""
    n = len(categories)
    text = str(name_or_index).strip()
    if text.lstrip("-").isdigit():
        idx = int(text)
        if not 0 <= idx < n:
            raise LensError(f"Class index {idx} is out of range: this model has classes 0..{n - 1}.")
        return idx
    low = text.lower()
    exact = [i for i, c in enumerate(categories) if c.lower() == low]
    if exact:
        return exact[0]
    partial = [i for i, c in enumerate(categories) if low and low in c.lower()]
    if len(partial) == 1:
        return partial[0]
    if partial:
        shown = ", ".join(f"{categories[i]} ({i})" for i in partial[:8])
        raise LensError(f"Class name '{text}' matches several classes: {shown}. Give the full name or the index.")
    raise LensError(f"Unknown class '{text}'. Give a class name of this model or an index 0..{n - 1}.")


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def prepare_for_viewing(model: nn.Module) -> nn.Module:
    """Eval mode, no in-place activations (recorded layer outputs are not overwritten later), channels-last weights.

    Channels-last: the convolutions then run in NHWC whatever the input's layout, and a forward plus input-gradient
    pass of EfficientNet-Lite0 took 41 ms per image instead of 55 (batch 16, 2 CPU cores); attacks, ideal images and
    gradient maps are made of such passes.
    """
    for module in model.modules():
        if hasattr(module, "inplace") and isinstance(module.inplace, bool):
            module.inplace = False
    return model.to(memory_format=torch.channels_last).eval()


def with_preprocess(backbone: Backbone, **changes) -> Backbone:
    """A copy of the backbone with some preprocessing settings changed."""
    return replace(backbone, preprocess=replace(backbone.preprocess, **changes))


def trained_backbone(
    model: nn.Module, base: str, classes: tuple[str, ...], preprocess: Preprocess, device: torch.device,
    head_spec: dict, strategy: str, name: str = "",
) -> Backbone:
    """A network with a new head (trained here, or rebuilt from an export) as a Backbone of source "trained"."""
    model = prepare_for_viewing(model)
    for p in model.parameters():  # like registry backbones, so input gradients (attacks, Grad-CAM) flow as usual
        p.requires_grad_(True)
    return Backbone(
        name=name or f"my model ({base}, {strategy})",
        model=model,
        categories=list(classes),
        preprocess=preprocess,
        device=device,
        source="trained",
        base=base,
        cam_layer=REGISTRY[base].cam_layer if base in REGISTRY else "",
        extra={"head": dict(head_spec), "strategy": strategy},
    )
