"""Layer maps from one forward and one short backward: Grad-CAM and the methods that differ only in the weighting.

Each method turns a layer's activations A and the class score's gradient G (M, C, h, w) into a map
(M, h, w); a ReLU keeps the evidence for the class. Formulas follow the papers and pytorch-grad-cam.
"""

from __future__ import annotations

import torch

from explain.cam.base import rounds, target_pairs
from explain.errors import LensError
from explain.hooks import hooked
from explain.models import Backbone


def _gradcam(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return (g.mean((2, 3))[:, :, None, None] * a).sum(1)


def _counterfactual(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    # Selvaraju et al. 2017, §5: the negated gradient weights the channels that argue against the class
    return _gradcam(a, -g)


def _gradcampp(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    # Chattopadhyay et al. 2018, eq. 19 with the exp(score) trick: only powers of the gradient
    g2 = g * g
    alpha = g2 / (2 * g2 + a.sum((2, 3), keepdim=True) * g2 * g + 1e-6)
    alpha = torch.where(g != 0, alpha, torch.zeros_like(alpha))
    weights = (g.clamp(min=0) * alpha).sum((2, 3))
    return (weights[:, :, None, None] * a).sum(1)


def _xgradcam(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    # Fu et al. 2020: each channel's gradient weighted by its own normalised activation
    weights = (g * a).sum((2, 3)) / (a.sum((2, 3)) + 1e-7)
    return (weights[:, :, None, None] * a).sum(1)


def _layercam(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    # Jiang et al. 2021: every location keeps its own positive gradient, so shallow layers give fine maps
    return (g.clamp(min=0) * a).sum(1)


def _hirescam(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    # Draelos & Carin 2020: gradient times activation element-wise, no averaging that could move evidence
    return (g * a).sum(1)


CAM_FORMULAS = {
    "gradcam": _gradcam,
    "gradcampp": _gradcampp,
    "xgradcam": _xgradcam,
    "layercam": _layercam,
    "hirescam": _hirescam,
    "counterfactual": _counterfactual,
}


def check_spatial(layer: str, act: torch.Tensor | None) -> torch.Tensor:
    if act is None:
        raise LensError(f"Layer '{layer}' is not used when the model runs. Pick another layer.")
    if act.ndim != 4:
        raise LensError(
            f"Layer '{layer}' gives an output of shape {tuple(act.shape)}, not a spatial map. "
            "Pick a convolutional layer (output channels × height × width)."
        )
    return act


def gradient_layer_cams(
    backbone: Backbone, x01: torch.Tensor, per_image: list, top_k: int, method: str, layers: list[str]
) -> tuple[list[torch.Tensor], list[tuple[int, int]], torch.Tensor]:
    """Maps at each layer's resolution for one chunk (one (M, h, w) per layer): one forward, one short backward per round."""
    formula = CAM_FORMULAS[method]
    x = x01.to(backbone.device).detach().requires_grad_(True)  # so the layer output needs a gradient even in a frozen model
    with torch.enable_grad(), hooked(backbone.model, layers, keep_grad=True) as outs:
        logits = backbone.logits(x)
        acts = [check_spatial(name, outs.get(name)) for name in layers]
        probs = logits.detach().float().softmax(1)
        pairs = target_pairs(per_image, probs, top_k)
        cams = [torch.empty(len(pairs), a.shape[2], a.shape[3], device=a.device) for a in acts]
        groups = rounds(pairs)
        for r, members in enumerate(groups):
            rows = torch.tensor([pairs[k][0] for k in members], device=logits.device)
            cols = torch.tensor([pairs[k][1] for k in members], device=logits.device)
            # the gradient stops at the deepest-first layers asked for: nothing below the shallowest is back-propagated
            grads = torch.autograd.grad(logits[rows, cols].sum(), acts, retain_graph=r < len(groups) - 1)
            for cam, act, grad in zip(cams, acts, grads):
                cam[members] = formula(act.detach()[rows].float(), grad[rows].float()).clamp(min=0)
    return cams, pairs, probs
