"""Objectives: what the picture should excite (a class, the mean of a channel, one neuron) and its score."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from explain.errors import LensError
from explain.featuremaps import probe_layers
from explain.models import Backbone

OBJECTIVES = ("logprob", "logit", "margin")


@dataclass(frozen=True)
class Target:
    """What the image should excite: a class, the mean of one channel, or the neuron at a channel's centre."""

    kind: str  # "class" | "channel" | "neuron"
    index: int  # class index, or channel index
    layer: str = ""  # for channel and neuron

    def describe(self, backbone: Backbone) -> str:
        if self.kind == "class":
            return f"{backbone.categories[self.index]} ({self.index})"
        where = "centre neuron of " if self.kind == "neuron" else ""
        return f"{where}{self.layer} channel {self.index}"


def class_target(backbone: Backbone, name_or_index: str | int) -> Target:
    """A class given by name (or part of it) or by index."""
    return Target("class", backbone.class_index(name_or_index))


def channel_target(backbone: Backbone, layer: str, channel: int, neuron: bool = False) -> Target:
    """One channel of a layer (its mean over all positions, or only the centre neuron)."""
    modules = dict(backbone.model.named_modules())
    if layer not in modules or not layer:
        raise LensError(f"Unknown layer '{layer}'. Pick a layer name from the model's layer list (python -m explain features IMAGE).")
    shape = probe_layers(backbone).shapes.get(layer)
    if shape is None:
        raise LensError(f"Layer '{layer}' has no feature map (N, C, H, W) output. Pick a convolutional layer.")
    channels = shape[0]
    if not 0 <= int(channel) < channels:
        raise LensError(f"Channel {channel} is out of range: layer '{layer}' has channels 0..{channels - 1}.")
    return Target("neuron" if neuron else "channel", int(channel), layer)


def objective_scores(target: Target, logits: torch.Tensor, maps: dict, objective: str) -> torch.Tensor:
    """One score per image of the batch; the optimiser makes it larger.

    objective (class targets): "logit" the raw class score; "logprob" log softmax, which also pushes the
    other classes down; "margin" the logit minus the mean of the other logits.
    """
    if target.kind == "class":
        if objective == "logit":
            return logits[:, target.index]
        if objective == "logprob":
            return logits.log_softmax(1)[:, target.index]
        if objective == "margin":
            others = (logits.sum(1) - logits[:, target.index]) / (logits.shape[1] - 1)
            return logits[:, target.index] - others
        raise LensError(f"Unknown objective '{objective}'. Choose one of: {', '.join(OBJECTIVES)}.")
    fmap = maps[target.layer][:, target.index]
    if target.kind == "neuron":
        h, w = fmap.shape[-2:]
        return fmap[:, h // 2, w // 2]
    return fmap.mean(dim=(-2, -1))


