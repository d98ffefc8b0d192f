"""The attack loop on a batch of crops: every iterate the network sees is the rounded image that would be saved."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from explain.adversarial.leaky import leaky_relus
from explain.adversarial.settings import SINGLE_VIEW_STEPS, AttackSettings
from explain.adversarial.views import ViewSampler, WorstOffsets
from explain.fusing import fused_twin
from explain.jobs import Progress, ProgressLog, StopSignal, stop_requested
from explain.models import Backbone
from explain.regularisers import total_variation


@dataclass(frozen=True)
class BatchOutcome:
    """The perturbations found for a batch of crops (levels, whole numbers) and the steps they took."""

    delta: torch.Tensor  # (N, 3, S, S) float holding whole levels; x + delta is inside [0, 255]
    reached: torch.Tensor  # (N,) bool: goal reached on the rounded image in the attack's own check
    steps_used: torch.Tensor  # (N,) int
    stopped: bool = False  # should_stop ended the loop before every image was done



def _unit(grad: torch.Tensor) -> torch.Tensor:
    return grad / grad.abs().flatten(1).mean(1).clamp_min(1e-12).view(-1, 1, 1, 1)


def quantise(delta: torch.Tensor, x: torch.Tensor, settings: AttackSettings) -> torch.Tensor:
    """The perturbation a saved PNG can hold: whole levels, inside the ε-ball and the pixel range.

    L∞ rounds and clips to ±floor(ε); L2 rounds, and where that leaves the ball it scales the
    float perturbation onto the ball and truncates towards zero (never outwards).
    """
    eps = settings.budget
    if settings.norm == "linf":
        q = delta.round().clamp(-eps, eps)
    else:
        q = delta.round()
        norms = q.flatten(1).norm(dim=1)
        over = norms > eps
        if over.any():
            raw = delta[over]
            scale = eps / raw.flatten(1).norm(dim=1).clamp_min(1e-12)
            q[over] = (raw * scale.view(-1, 1, 1, 1)).trunc()
    return torch.minimum(torch.maximum(q, -x), 255 - x)


def _project(delta: torch.Tensor, x: torch.Tensor, settings: AttackSettings) -> torch.Tensor:
    eps = settings.budget
    if settings.norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
        delta = delta * (eps / norms).clamp(max=1).view(-1, 1, 1, 1)
    return torch.minimum(torch.maximum(delta, -x), 255 - x)


def _random_start(x: torch.Tensor, settings: AttackSettings, gen: torch.Generator) -> torch.Tensor:
    eps = settings.budget
    if settings.norm == "linf":
        noise = torch.rand(x.shape, generator=gen, device=x.device) * 2 - 1
        return noise * eps
    noise = torch.randn(x.shape, generator=gen, device=x.device)
    radius = torch.rand(len(x), generator=gen, device=x.device).view(-1, 1, 1, 1) * eps
    return noise / noise.flatten(1).norm(dim=1).view(-1, 1, 1, 1) * radius


def _diverse(x01: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Input diversity (Xie et al.): shrink by up to 10 % and pad at a random place, same size out."""
    size = x01.shape[-1]
    low = int(size * 0.9)
    new = int(torch.randint(low, size + 1, (1,), generator=gen, device=x01.device))
    if new == size:
        return x01
    small = F.interpolate(x01, size=(new, new), mode="bilinear", align_corners=False)
    top = int(torch.randint(0, size - new + 1, (1,), generator=gen, device=x01.device))
    left = int(torch.randint(0, size - new + 1, (1,), generator=gen, device=x01.device))
    return F.pad(small, (left, size - new - left, top, size - new - top), value=0.5)


def _goal_state(logits: torch.Tensor, goal: torch.Tensor, targeted: bool, settings: AttackSettings, margin: float | None = None):
    """(reached, goal probability, lead of the goal side in logits) per image, from logits of the rounded image."""
    probs = logits.softmax(1)
    goal_logit = logits.gather(1, goal.view(-1, 1)).squeeze(1)
    others = logits.scatter(1, goal.view(-1, 1), float("-inf")).amax(1)
    goal_prob = probs.gather(1, goal.view(-1, 1)).squeeze(1)
    if targeted:
        lead = goal_logit - others
        reached = (lead >= (settings.margin if margin is None else margin)) & (goal_prob >= settings.confidence)
    else:
        lead = others - goal_logit
        reached = (lead >= (settings.margin if margin is None else margin)) & (probs.amax(1) >= settings.confidence)
    return reached, goal_prob, lead


def attack_batch(
    backbone: Backbone,
    crops: torch.Tensor,
    goal: torch.Tensor,
    targeted: bool,
    settings: AttackSettings,
    callback: Callable[[Progress], None] | None = None,
    should_stop: StopSignal = None,
) -> BatchOutcome:
    """Find perturbations for a batch of network-input crops.

    crops: (N, 3, S + 2m, S + 2m) in [0, 1] holding uint8 values (k/255): the network-input crops of side
    S = backbone.preprocess.input_size with a margin m that the attack may change too; goal: (N,) target
    classes (targeted) or the classes to move away from. With settings.views > 0 every step averages the
    gradient over that many views of each canvas (the first SINGLE_VIEW_STEPS steps over one, judging nothing):
    the exact centre crop (from 2 views on) and random ones (shifted by up to the margin, some slightly rescaled,
    with settings.jpeg some through JPEG). An image is at its goal only when every view leads by settings.view_margin(step);
    images at their goal leave the batch early. L∞ PGD with views steps along the sign of a running sum of those
    averaged gradients (settings.view_momentum).
    A long job (explain.jobs): callback(progress) after every step, with metrics "goal_prob" (the goal's
    probability, mean over the batch) and "reached" (images at their goal); should_stop ends it early.
    """
    settings = settings.checked()
    device = backbone.device
    x = (crops.to(device).float() * 255).round()
    goal = goal.to(device).long()
    n = len(x)
    steps = 1 if settings.method == "fgsm" else settings.steps
    alphas = settings.step_sizes()
    gen = torch.Generator(device=device)
    if settings.seed is None:
        gen.seed()
    else:
        gen.manual_seed(settings.seed)

    size = backbone.preprocess.input_size
    margin = (x.shape[-1] - size) // 2
    model = fused_twin(backbone.model, size)  # BatchNorm and ReLUs folded into the convs: the same logits, faster passes
    sampler = ViewSampler(size, margin, jpeg=0.25 if settings.jpeg else 0.0) if settings.views else None
    repeats = settings.views if sampler else 1
    # the first steps take one view each (the weakest shifted crop): nothing is judged on them (settings.SINGLE_VIEW_STEPS)
    warm = SINGLE_VIEW_STEPS if repeats > 1 and steps > SINGLE_VIEW_STEPS else 0

    # the random views go to the crop offsets that led least when last seen (explain.adversarial.views.WorstOffsets)
    worst = WorstOffsets(n, device, centre_seen=repeats > 1) if sampler else None
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []  # this step's (offset, really shown) per random view

    def network_inputs(canvas01: torch.Tensor, idx: torch.Tensor, n_views: int) -> torch.Tensor:
        if sampler is None:
            return canvas01[..., margin : margin + size, margin : margin + size]
        seen.clear()
        random_views = []
        for pick in worst.pick(idx, n_views - (n_views > 1), gen):
            view, rescaled = sampler.sample(canvas01, gen, worst.offsets[pick])
            random_views.append(view)
            seen.append((pick, ~rescaled))
        if n_views == 1:
            return random_views[0]
        # with two views or more the first is this app's exact crop: its verdict is the one the lab reports first
        # (16 tuning photos, ε = 2, 2 views: 16/16 fooled through our crop and torchvision's against 13/16 with two
        # random views, the same 84 % of shifted crops)
        return torch.cat([canvas01[..., margin : margin + size, margin : margin + size], *random_views])

    delta = torch.zeros_like(x)
    if settings.random_start and settings.method == "pgd":
        delta = _project(_random_start(x, settings, gen), x, settings)
    momentum = torch.zeros_like(x)
    previous = torch.zeros_like(x)
    best = torch.zeros_like(x)
    best_lead = torch.full((n,), float("-inf"), device=device)
    best_fools = torch.zeros(n, dtype=torch.bool, device=device)  # the kept image gives the goal through the exact crop
    reached = torch.zeros(n, dtype=torch.bool, device=device)
    steps_used = torch.zeros(n, dtype=torch.long, device=device)
    goal_prob = torch.zeros(n, device=device)
    active = torch.arange(n, device=device)
    sign = -1.0 if targeted else 1.0  # descend the goal's loss when targeted, ascend it otherwise

    def record(idx: torch.Tensor, q: torch.Tensor, logits: torch.Tensor, step: int, n_views: int, judged: bool) -> torch.Tensor:
        ok, prob, lead = _goal_state(logits.detach(), goal[idx].repeat(n_views), targeted, settings, settings.view_margin(step) if sampler else None)
        per_view = lead.view(n_views, -1)
        for i, (pick, shown) in enumerate(seen):
            worst.update(idx, pick, per_view[i + (n_views > 1)], shown)
        # several views of each image: it is only at its goal when every view is
        ok = ok.view(n_views, -1).all(0)
        prob = prob.view(n_views, -1).mean(0)
        goal_prob[idx] = prob
        if not judged:
            # a stop during these steps keeps the latest iterate; any judged one replaces it (its lead stays -inf)
            best[idx] = q.detach()
            return torch.zeros_like(ok)
        if n_views > 1:
            # the views go to the weakest crops, so the worst view's lead drops as the attack finds them and cannot
            # rank iterates; keep the latest image that gives the goal through the exact crop (later ones have
            # been pushed on more of the failing crops), or, while none does, the one closest to it
            lead = per_view[0]
            fools = lead >= settings.margin
            better = ok | (~reached[idx] & (fools | (~best_fools[idx] & (lead > best_lead[idx]))))
        else:
            # keep the strongest rounded image seen; a reached one wins outright (it also met the confidence)
            lead = per_view[0]
            fools = torch.zeros_like(ok)
            better = ok | ((lead > best_lead[idx]) & ~reached[idx])
        best[idx[better]] = q.detach()[better]
        best_lead[idx[better]] = lead[better]
        best_fools[idx[better]] = fools[better]
        reached[idx[ok]] = True
        return ok

    leaks = settings.leaks()
    log = ProgressLog(steps, callback)
    stopped = False
    for step in range(steps + 1):
        if stop_requested(should_stop):
            stopped = True
            break
        last = step == steps
        n_views = 1 if step < warm else repeats
        xa, da = x[active], delta[active]
        q = quantise(da, xa, settings).requires_grad_(not last)
        x01 = (xa + q) / 255
        # input diversity changes what the network sees, so those logits cannot judge the rounded image
        diverse = (
            not last
            and settings.method == "mifgsm"
            and settings.diversity > 0
            and float(torch.rand(1, generator=gen, device=device)) < settings.diversity
        )
        # the gradient flows back through the nodes this forward pass builds: the leak is set here
        with torch.set_grad_enabled(not last), leaky_relus(model, 0.0 if last else leaks[step]):
            views = network_inputs(x01, active, n_views)
            logits = model(backbone.normalize(_diverse(views, gen) if diverse else views))
        ok = torch.zeros(len(active), dtype=torch.bool, device=device) if diverse else record(active, q, logits, step, n_views, step >= warm)
        steps_used[active] = step
        log.report(step, "attack", {"goal_prob": float(goal_prob.mean()), "reached": int(reached.sum())})
        keep = ~ok
        if last or not keep.any():
            break
        loss = F.cross_entropy(logits, goal[active].repeat(n_views), reduction="sum") / n_views
        (grad,) = torch.autograd.grad(loss, q)
        if settings.tv_weight > 0:
            # both gradients scaled to mean magnitude 1, so the weight is "smoothness per unit of attack";
            # the penalty always shrinks TV, whichever way the goal's loss is followed
            (tv_grad,) = torch.autograd.grad(total_variation(q).sum(), q)
            grad = _unit(grad) - sign * settings.tv_weight * _unit(tv_grad)
        grad, da, xa, idx = grad[keep], da[keep], xa[keep], active[keep]
        if settings.method == "mifgsm":
            momentum[idx] = settings.decay * momentum[idx] + _unit(grad)
            step_dir = momentum[idx].sign()
        elif sampler is not None and settings.view_momentum > 0 and settings.norm == "linf":
            momentum[idx] = settings.view_momentum * momentum[idx] + _unit(grad)
            step_dir = momentum[idx].sign()
        elif settings.norm == "l2":
            step_dir = grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
        else:
            step_dir = grad.sign()
        # the float iterate moves; the network is always shown its rounding (a straight-through step)
        z = _project(da + sign * alphas[step] * step_dir, xa, settings)
        if settings.method == "pgd" and step > 0:
            # APGD's heavy-ball step: a quarter of the last move again; fewer steps to the goal
            z = _project(da + 0.75 * (z - da) + 0.25 * (da - previous[idx]), xa, settings)
        previous[idx] = da
        delta[idx] = z
        active = idx
    return BatchOutcome(best, reached.cpu(), steps_used.cpu(), stopped)


