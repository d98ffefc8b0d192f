"""Maps at the input pixels: gradient saliency, SmoothGrad, integrated gradients, guided backprop, occlusion.

Saliency and guided backprop take the class score's gradient with respect to the photos themselves
(`class_gradients`): one forward pass per chunk gives the probabilities, the top classes and the graph.
SmoothGrad and integrated gradients share one loop (`input_gradients`): the gradient with respect to copies
of the photos (noisy copies for SmoothGrad, copies along a path from a black image for integrated gradients),
several copies per pass. Occlusion needs no gradient: a grey patch slides over the photo and every batch of
covered copies is one forward pass. All of them run the network's BatchNorm-folded twin (explain.folding): the
same logits and gradients in fewer operations (the app's network is never changed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from explain.cam.base import Meter, rounds, target_pairs
from explain.errors import LensError
from explain.folding import folded_twin
from explain.hooks import attached
from explain.models import Backbone

# activations whose backward pass guided backprop changes (Springenberg et al. 2015 used ReLU; the smooth
# ones behave alike for positive inputs and are treated the same way here)
GUIDED_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SiLU, nn.Hardswish, nn.GELU, nn.Mish)


# activations whose derivative is 0 or 1: clamping the gradient after their backward pass is the same as before it
_STEP_DERIVATIVE = (nn.ReLU, nn.ReLU6)


def _positive(grad: torch.Tensor) -> torch.Tensor:
    return grad.clamp(min=0)


def _positive_made(grad_inputs: tuple, grad_outputs: tuple) -> tuple | None:
    """Backward hook of a ReLU/ReLU6 node: clamps the gradient it has just made, in place (no new tensor),
    unless that tensor is one it was given (then a clamped copy, so no other gradient changes)."""
    g = grad_inputs[0]
    if g is None:
        return None
    if any(o is not None and o.data_ptr() == g.data_ptr() for o in grad_outputs):
        return (g.clamp(min=0), *grad_inputs[1:])
    g.clamp_(min=0)
    return grad_inputs


def _guide(module: nn.Module, _inputs, out) -> None:
    """Forward hook: the gradient reaching the activation's input is the activation's backward of the output's
    gradient clamped at 0. The forward pass stays exactly as it was (no copy, no extra node).

    ReLU, ReLU6: the activation's backward node clamps the gradient it makes (its derivative is 0 or 1, so
    clamping after it equals clamping before it, and the gradient it made is its own to change in place).
    The smooth ones: a tensor hook clamps the output's gradient, summed over its consumers, before the
    activation's backward uses it.
    """
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        return
    if isinstance(module, _STEP_DERIVATIVE) and out.grad_fn is not None:
        out.grad_fn.register_hook(_positive_made)
    else:
        out.register_hook(_positive)


def _twin(backbone: Backbone) -> nn.Module:
    """The network these maps run: the BatchNorm-folded copy (explain.folding), same logits and input gradients, faster."""
    return folded_twin(backbone.model, backbone.preprocess.input_size)


@contextmanager
def guided(model: nn.Module) -> Iterator[None]:
    """While the block runs, every activation module passes back only positive gradients (hooks always removed).

    Clamping the gradient at an activation's output and then letting the activation's own backward pass
    zero it where the input was negative is exactly guided backprop's rule for a ReLU. For ReLU6 (and
    hardtanh-like activations) the activation's backward also zeroes it where the input was above 6:
    guided backprop through ReLU6 keeps a gradient only where 0 < input < 6 and the gradient is positive.
    Captum's GuidedBackprop changes nn.ReLU modules only, so on a ReLU6 network its map is the plain gradient.
    """
    modules = [m for m in model.modules() if isinstance(m, GUIDED_ACTIVATIONS)]
    if not modules:
        raise LensError("Guided backprop needs activation layers as modules (ReLU and the like); this model has none.")
    with attached(forward=[(m, _guide) for m in modules]):
        yield


def class_gradients(
    backbone: Backbone, x01: torch.Tensor, per_image: list, top_k: int, batch_size: int, guide: bool = False
) -> tuple[torch.Tensor, list[tuple[int, int]], torch.Tensor]:
    """Gradient (M, 3, H, W) of each pair's class score with respect to the photos themselves, with the pairs and
    the clean probabilities: saliency and guided backprop.

    One forward pass per chunk gives both the probabilities (so the top classes can be chosen) and the graph
    the gradients come from; no separate pass for the probabilities. The guiding hooks change only the
    backward pass, so the probabilities are the clean ones also for guided backprop.
    """
    n = x01.shape[0]
    bs = max(1, batch_size)
    net = _twin(backbone)
    grads_list, pairs, probs_list = [], [], []
    for start in range(0, n, bs):
        x = x01[start : start + bs].to(backbone.device).detach().requires_grad_(True)
        with torch.enable_grad(), (guided(net) if guide else _nothing()):
            logits = net(backbone.normalize(x))
        probs = logits.detach().float().softmax(1)
        chunk_pairs = target_pairs(per_image[start : start + bs], probs, top_k)
        grads = torch.empty(len(chunk_pairs), *x.shape[1:], device=x.device)
        groups = rounds(chunk_pairs)
        for r, members in enumerate(groups):
            images = [chunk_pairs[k][0] for k in members]
            rows = torch.tensor(images, device=logits.device)
            cols = torch.tensor([chunk_pairs[k][1] for k in members], device=logits.device)
            (g,) = torch.autograd.grad(logits[rows, cols].sum(), x, retain_graph=r < len(groups) - 1)
            grads[members] = g[images]
        grads_list.append(grads)
        pairs += [(i + start, c) for i, c in chunk_pairs]
        probs_list.append(probs)
    return torch.cat(grads_list), pairs, torch.cat(probs_list)


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
    net = _twin(backbone)
    done = 0
    if meter is not None:
        meter.plan(copies)
    while done < copies and not (meter is not None and meter.stopped):
        c = min(per_pass, copies - done)
        batch = torch.cat([make_copy(x01, j) for j in range(done, done + c)]).requires_grad_(True)
        with torch.enable_grad(), (guided(net) if guide else _nothing()):
            logits = net(backbone.normalize(batch))
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
    net = _twin(backbone)
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
            clean = net(backbone.normalize(image)).float().softmax(1)[0, cols]
            for s in range(0, len(places), batch):
                if meter is not None and meter.stopped:
                    break
                chunk = places[s : s + batch]
                copies = image.repeat(len(chunk), 1, 1, 1)
                for b, (y, x) in enumerate(chunk):
                    copies[b, :, y : y + patch, x : x + patch] = fill[0]
                drop = clean[None] - net(backbone.normalize(copies)).float().softmax(1)[:, cols]  # (B, T)
                for b, (y, x) in enumerate(chunk):
                    drops[members, y : y + patch, x : x + patch] += drop[b][:, None, None]
                    counts[members, y : y + patch, x : x + patch] += 1
                if meter is not None:
                    meter.advance(len(chunk))
    return drops / counts.clamp(min=1)
