"""Layer maps without gradients: Score-CAM and Ablation-CAM weight channels by batched forward passes,
Eigen-CAM takes the first principal component of the activations (and so ignores the class)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from explain.cam.base import Meter
from explain.cam.gradient import check_spatial
from explain.folding import folded_twin
from explain.hooks import attached, hooked
from explain.models import Backbone


def record_layer(backbone: Backbone, x01: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(activations (N, C, h, w), logits) of one forward pass without gradients."""
    with torch.no_grad(), hooked(backbone.model, [layer]) as outs:
        logits = backbone.logits(x01)
        act = check_spatial(layer, outs.get(layer))
    return act.float(), logits.float()


def _targets_by_image(pairs: list[tuple[int, int]]) -> dict[int, list[int]]:
    """Pair positions grouped by image: each image's masked or ablated copies serve all of its targets at once."""
    grouped: dict[int, list[int]] = {}
    for k, (i, _) in enumerate(pairs):
        grouped.setdefault(i, []).append(k)
    return grouped


def scorecam(
    backbone: Backbone, x01: torch.Tensor, pairs: list[tuple[int, int]], layer: str, batch: int, meter: Meter | None = None,
) -> torch.Tensor:
    """Score-CAM (Wang et al. 2020): each channel, upsampled and scaled to [0, 1], masks the (normalised) photo;
    the class logit of the masked photo, softmaxed over the channels, is the channel's weight.

    meter: progress in channels; once it says stop, the channels not scored get no weight."""
    x01 = x01.to(backbone.device)
    act, _ = record_layer(backbone, x01, layer)
    cams = torch.empty(len(pairs), act.shape[2], act.shape[3], device=act.device)
    size = tuple(x01.shape[2:])
    channels = act.shape[1]
    groups = _targets_by_image(pairs)
    net = folded_twin(backbone.model, backbone.preprocess.input_size)  # same logits, fewer operations per pass
    if meter is not None:
        meter.plan(channels * len(groups))
    for i, members in groups.items():
        cols = torch.tensor([pairs[k][1] for k in members], device=act.device)
        xn = backbone.normalize(x01[i : i + 1])
        scores = torch.full((channels, len(members)), -torch.inf, device=act.device)
        with torch.no_grad():
            for s in range(0, channels, batch):
                if meter is not None and meter.stopped:
                    break
                # align_corners=True like pytorch-grad-cam (UpsamplingBilinear2d), so the two agree map for map
                up = F.interpolate(act[i : i + 1, s : s + batch], size=size, mode="bilinear", align_corners=True)[0]
                lo = up.flatten(1).min(1).values[:, None, None]
                hi = up.flatten(1).max(1).values[:, None, None]
                masks = (up - lo) / (hi - lo + 1e-8)
                scores[s : s + batch] = net(xn * masks[:, None]).float()[:, cols]
                if meter is not None:
                    meter.advance(masks.shape[0])
        weights = scores.softmax(0).nan_to_num(0.0)  # (C, T); nothing scored (stopped at once): no weight
        cams[members] = torch.einsum("ct,chw->thw", weights, act[i]).clamp(min=0)
    return cams


def ablationcam(
    backbone: Backbone, x01: torch.Tensor, pairs: list[tuple[int, int]], layer: str, batch: int, meter: Meter | None = None,
) -> torch.Tensor:
    """Ablation-CAM (Desai & Ramaswamy 2020): a channel's weight is the share of the class logit lost when it is removed.

    The layers below run once per batch of ablations: a forward hook hands the layer's recorded output, with one
    channel removed per copy, to the layers above (the whole photo is repeated only when the model joins a skip
    connection from below the layer, which a batch of one cannot feed).
    meter: progress in channels; once it says stop, the channels not ablated get no weight.
    """
    x01 = x01.to(backbone.device)
    act, logits = record_layer(backbone, x01, layer)
    module = backbone.model.get_submodule(layer)
    cams = torch.empty(len(pairs), act.shape[2], act.shape[3], device=act.device)
    channels = act.shape[1]
    groups = _targets_by_image(pairs)
    if meter is not None:
        meter.plan(channels * len(groups))
    for i, members in groups.items():
        cols = torch.tensor([pairs[k][1] for k in members], device=act.device)
        base = act[i : i + 1]
        # pytorch-grad-cam's rule: zero when the layer's output is never negative, else far below its minimum
        low = 0.0 if float(base.min()) == 0.0 else float(base.min()) - 1e7
        original = logits[i, cols]  # (T,)
        scores = original[None].repeat(channels, 1)  # a channel never ablated (stopped) loses nothing
        repeat_input = False
        # only the layers above see the ablated copies (the ones below run once per pass), so passes may be big:
        # as many copies as fit in about 64 MB of the layer's output
        batch = max(batch, min(256, int(16e6 // max(1, base[0].numel()))))
        for s in range(0, channels, batch):
            if meter is not None and meter.stopped:
                break
            b = min(batch, channels - s)

            def ablate(_m, _inputs, _out, s=s, b=b, base=base, low=low):
                out = base.repeat(b, 1, 1, 1)
                out[torch.arange(b), torch.arange(s, s + b)] = low
                return out

            with torch.no_grad(), attached(forward=[(module, ablate)]):
                try:
                    out = backbone.logits(x01[i : i + 1].expand(b, -1, -1, -1) if repeat_input else x01[i : i + 1])
                except RuntimeError:
                    if repeat_input:
                        raise
                    repeat_input = True
                    out = backbone.logits(x01[i : i + 1].expand(b, -1, -1, -1))
            scores[s : s + b] = out.float()[:, cols]
            if meter is not None:
                meter.advance(b)
        weights = (original[None] - scores) / original[None]
        cams[members] = torch.einsum("ct,chw->thw", weights, act[i]).clamp(min=0)
    return cams


def eigencam(backbone: Backbone, x01: torch.Tensor, pairs: list[tuple[int, int]], layer: str) -> torch.Tensor:
    """Eigen-CAM (Muhammad & Yeasin 2020): the activations' first principal component, whatever the class.

    An SVD's sign is arbitrary; the map is turned so that it agrees with the layer's summed activation
    (pytorch-grad-cam keeps whatever sign LAPACK returns).
    """
    act, _ = record_layer(backbone, x01.to(backbone.device), layer)
    n, c, h, w = act.shape
    flat = act.reshape(n, c, h * w).transpose(1, 2)  # (N, hw, C)
    centred = flat - flat.mean(1, keepdim=True)
    _, _, vh = torch.linalg.svd(centred.double(), full_matrices=False)
    proj = (centred.double() @ vh[:, 0, :, None])[..., 0].float()  # (N, hw)
    total = act.sum(1).reshape(n, h * w)
    sign = torch.sign(((proj - proj.mean(1, keepdim=True)) * (total - total.mean(1, keepdim=True))).sum(1))
    proj = proj * torch.where(sign == 0, torch.ones_like(sign), sign)[:, None]
    maps = proj.reshape(n, h, w).clamp(min=0)
    return maps[[i for i, _ in pairs]]
