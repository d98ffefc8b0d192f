"""A Keras-style summary of a network: every layer with parameters, its output shape, its counts."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from explain.hooks import attached
from explain.models.backbone import Backbone


@dataclass(frozen=True)
class SummaryRow:
    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    trainable: str  # "yes" | "no" | "partly" | "" (no parameters)


@dataclass(frozen=True)
class ModelSummary:
    rows: list[SummaryRow]
    total_params: int
    trainable_params: int
    frozen_params: int

    def as_text(self) -> str:
        """Keras-style table."""
        lines = [f"{'Layer (type)':<48}{'Output Shape':<22}{'Param #':>12}  Trainable", "=" * 92]
        for r in self.rows:
            shape = "(None, " + ", ".join(str(s) for s in r.output_shape[1:]) + ")"
            lines.append(f"{(r.name + ' (' + r.type + ')')[:47]:<48}{shape:<22}{r.params:>12,}  {r.trainable}")
        lines += [
            "=" * 92,
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.frozen_params:,}",
        ]
        return "\n".join(lines)


def summarize(backbone: Backbone) -> ModelSummary:
    """Keras-style summary: every layer that holds parameters or is a leaf, in execution order."""
    model = backbone.model
    shapes: dict[str, tuple[int, ...]] = {}
    order: list[str] = []
    hooks = []
    for name, module in model.named_modules():
        is_leaf = not any(True for _ in module.children())
        has_own = any(True for _ in module.parameters(recurse=False))
        if name and (has_own or is_leaf) and not isinstance(module, nn.Identity):

            def hook(_m, _i, out, name=name):
                if name not in shapes:
                    order.append(name)
                if isinstance(out, torch.Tensor):
                    shapes[name] = tuple(out.shape)

            hooks.append((module, hook))
    size = backbone.preprocess.input_size
    with attached(forward=hooks), torch.no_grad():
        backbone.logits(torch.zeros(1, 3, size, size, device=backbone.device))
    modules = dict(model.named_modules())
    rows = []
    for name in order:
        params = list(modules[name].parameters(recurse=False))
        count = sum(p.numel() for p in params)
        flags = {p.requires_grad for p in params}
        trainable = "" if not params else ("yes" if flags == {True} else "no" if flags == {False} else "partly")
        rows.append(SummaryRow(name, type(modules[name]).__name__, shapes.get(name, ()), count, trainable))
    total = sum(p.numel() for p in model.parameters())
    trainable_count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return ModelSummary(rows, total, trainable_count, total - trainable_count)
