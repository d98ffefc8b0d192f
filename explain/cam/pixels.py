"""Maps at the input pixels: gradient saliency, SmoothGrad, integrated gradients, guided backprop, occlusion.

The gradient methods share one loop (`input_gradients`): the class score's gradient with respect to copies
of the photos (noisy copies for SmoothGrad, copies along a path from a black image for integrated gradients),
several copies per pass. Occlusion needs no gradient: a grey patch slides over the photo and every batch of
covered copies is one forward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from explain.cam.base import Meter, rounds
from explain.errors import LensError
from explain.hooks import attached
from explain.models import Backbone

# activations whose backward pass guided backprop changes (Springenberg et al. 2015 used ReLU; the smooth
# ones behave alike for positive inputs and are treated the same way here)
GUIDED_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SiLU, nn.Hardswish, nn.GELU, nn.Mish)


class _PositiveGradient(torch.autograd.Function):
    """Identity forward; backward lets only positive gradients through (the 'guided' rule)."""

    @staticmethod
    def forward(ctx, x):  # noqa: D102
        return x.clone()

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        return grad.clamp(min=0)


@contextmanager
def guided(model: nn.Module) -> Iterator[None]:
    """While the block runs, every activation module passes back only positive gradients (hooks always removed).

    Clamping the gradient at an activation's output and then letting the activation's own backward pass
    zero it where the input was negative is exactly guided backprop's rule for a ReLU.
    """
    modules = [m for m in model.modules() if isinstance(m, GUIDED_ACTIVATIONS)]
    if not modules:
        raise LensError("Guided backprop needs activation layers as modules (ReLU and the like); this model has none.")
    with attached(forward=[(m, lambda _m, _i, out: _PositiveGradient.apply(out)) for m in modules]):
        yield


def input_gradients(
    backbone: Backbone, x01: torch.Tensor, pairs: list[tuple[int, int]], copies: int,
    make_copy: Callable[[torch.Tensor, int], torch.Tensor], batch_size: int, guide: bool = False,
    meter: Meter | None = None,
) -> torch.Tensor:
    """Mean gradient (M, 3, H, W) of each pair's class score with respect to `copies` copies of the images.

    make_copy(x01, j): the j-th copy of all N images (noisy, or a step along a path); several copies go in one pass.
    meter: progress in copies; once it says stop, the mean is over the copies done.
    """
    x01 = x01.to(backbone.device).detach()
    n = x01.shape[0]
    grads = torch.zeros(len(pairs), *x01.shape[1:], device=x01.device)
    groups = rounds(pairs)
    per_pass = max(1, batch_size // max(n, 1))
    done = 0
    if meter is not None:
        meter.plan(copies)
    while done < copies and not (meter is not None and meter.stopped):
        c = min(per_pass, copies - done)
        batch = torch.cat([make_copy(x01, j) for j in range(done, done + c)]).requires_grad_(True)
        with torch.enable_grad(), (guided(backbone.model) if guide else _nothing()):
            logits = backbone.logits(batch)
            for r, members in enumerate(groups):
                rows = torch.tensor([copy * n + pairs[k][0] for copy in range(c) for k in members], device=logits.device)
                cols = torch.tensor([pairs[k][1] for _ in range(c) for k in members], device=logits.device)
                (g,) = torch.autograd.grad(logits[rows, cols].sum(), batch, retain_graph=r < len(groups) - 1)
                g = g.view(c, n, *g.shape[1:]).sum(0)
                grads[members] += g[[pairs[k][0] for k in members]]
        done += c
        if meter is not None:
            meter.advance(c)
    return grads / max(1, done)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def noisy_copies(x01: torch.Tensor, noise: float, seed: int) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """SmoothGrad's copies: Gaussian noise of `noise` times the pixel range, the same for the same seed."""
    gen = torch.Generator().manual_seed(seed)
    sigma = noise * float(x01.max() - x01.min())
    return lambda x, _j: x + torch.randn(x.shape, generator=gen).mul_(sigma).to(x.device)


def path_copies(steps: int) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """Integrated gradients' copies: the midpoints of `steps` equal steps from a black image to the photo."""
    return lambda x, j: x * ((j + 0.5) / steps)


def occlusion(
    backbone: Backbone, x01: torch.Tensor, pairs: list[tuple[int, int]], patch: int, stride: int, batch: int,
    meter: Meter | None = None,
) -> torch.Tensor:
    """How much each class's probability drops when a patch of the image's mean colour covers each place (M, H, W).

    Every pixel gets the mean drop of the patches that covered it (Zeiler & Fergus 2014; Captum's Occlusion).
    meter: progress in patch places; once it says stop, each pixel has the mean over the places done.
    """
    x01 = x01.to(backbone.device)
    _, _, h, w = x01.shape
    patch = max(1, min(patch, h, w))
    stride = max(1, stride)
    ys = list(range(0, h - patch + 1, stride))
    xs = list(range(0, w - patch + 1, stride))
    if ys[-1] != h - patch:
        ys.append(h - patch)
    if xs[-1] != w - patch:
        xs.append(w - patch)
    places = [(y, x) for y in ys for x in xs]
    drops = torch.zeros(len(pairs), h, w, device=x01.device)
    counts = torch.zeros(len(pairs), h, w, device=x01.device)
    by_image: dict[int, list[int]] = {}
    for k, (i, _) in enumerate(pairs):
        by_image.setdefault(i, []).append(k)
    if meter is not None:
        meter.plan(len(places) * len(by_image))
    with torch.no_grad():
        for i, members in by_image.items():
            cols = torch.tensor([pairs[k][1] for k in members], device=x01.device)
            image = x01[i : i + 1]
            fill = image.mean((2, 3), keepdim=True)
            clean = backbone.logits(image).float().softmax(1)[0, cols]
            for s in range(0, len(places), batch):
                if meter is not None and meter.stopped:
                    break
                chunk = places[s : s + batch]
                copies = image.repeat(len(chunk), 1, 1, 1)
                for b, (y, x) in enumerate(chunk):
                    copies[b, :, y : y + patch, x : x + patch] = fill[0]
                drop = clean[None] - backbone.logits(copies).float().softmax(1)[:, cols]  # (B, T)
                for b, (y, x) in enumerate(chunk):
                    drops[members, y : y + patch, x : x + patch] += drop[b][:, None, None]
                    counts[members, y : y + patch, x : x + patch] += 1
                if meter is not None:
                    meter.advance(len(chunk))
    return drops / counts.clamp(min=1)
