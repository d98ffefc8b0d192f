"""The loop that composes a parameterisation, transforms, an objective and regularisers into an ideal image."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from explain.errors import LensError
from explain.hooks import hooked
from explain.images import to_image
from explain.jobs import Progress, ProgressLog, StopSignal, stop_requested
from explain.limits import MAX_IDEAL_BATCH, MAX_IDEAL_SIZE, MAX_IDEAL_STEPS, MIN_IDEAL_SIZE
from explain.models import REGISTRY, Backbone, weight_status
from explain.regularisers import blur_penalty, l2_norm, total_variation
from explain.synthesis.objectives import OBJECTIVES, Target, objective_scores
from explain.synthesis.param import PARAMETERISATIONS, make_param
from explain.synthesis.transforms import Transform, compose, jitter, pad, random_scale_rotate


@dataclass(frozen=True)
class IdealSettings:
    """Every knob of the loop. Two presets: PRESETS["course"] and PRESETS["clear"]."""

    method: str = "fft"  # "pixels" | "fft"
    steps: int = 64
    lr: float = 0.05
    size: int = 224  # side of the image, pixels
    seed: int = 0
    objective: str = "logprob"  # for class targets, see objective_scores
    tv: float = 0.0  # weight of total variation
    l2: float = 0.0  # weight of the L2 penalty
    blur: float = 0.0  # weight of the blur penalty
    batch: int = 1  # augmented copies per step (their gradients are averaged)
    pad: int = 0
    jitter: int = 0
    scale: tuple[float, float] = (1.0, 1.0)
    rotate: float = 0.0  # degrees, each way
    net_size: int = 0  # side the network sees after the transforms (0 = as they come)

    def transforms(self) -> Transform:
        """The random transforms these settings ask for, in the usual order."""
        return compose(
            [pad(self.pad), jitter(self.jitter), random_scale_rotate(self.scale[0], self.scale[1], self.rotate),
             jitter(self.jitter // 2)]
        )


PRESETS: dict[str, IdealSettings] = {
    # The course: raw pixels from noise, plain gradient steps on the class, TV keeps neighbours alike.
    # TV is a per-pixel mean and Adam scales steps per pixel, so it needs a weight of this order to show.
    "course": IdealSettings(method="pixels", steps=120, lr=0.01, tv=10.0, objective="logprob"),
    # Feature-visualisation practice: FFT + decorrelated colour, and robustness to small moves, zooms and turns.
    # The raw logit keeps strengthening the class's features after the probability saturates, which is what
    # makes a second network agree (log-prob stops at p = 1); 120 steps fit ~10 s on 2 CPU cores at 224 px.
    "clear": IdealSettings(
        method="fft", steps=120, lr=0.08, batch=1, pad=16, jitter=16, scale=(0.8, 1.2), rotate=15.0, objective="logit",
    ),
}
DEFAULT_PRESET = "clear"
# each parameterisation's own recipe: the CLI's --method pixels is the course recipe, fft the clear one
PRESET_OF_METHOD: dict[str, str] = {settings.method: name for name, settings in PRESETS.items()}


def preset(name: str, **overrides) -> IdealSettings:
    """A preset with some knobs changed; None values keep the preset's."""
    if name not in PRESETS:
        raise LensError(f"Unknown preset '{name}'. Choose one of: {', '.join(PRESETS)}.")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})


def check_settings(settings: IdealSettings) -> None:
    """Raise LensError for knobs that cannot work."""
    if settings.method not in PARAMETERISATIONS:
        raise LensError(f"Unknown method '{settings.method}'. Choose one of: {', '.join(PARAMETERISATIONS)}.")
    if settings.objective not in OBJECTIVES:
        raise LensError(f"Unknown objective '{settings.objective}'. Choose one of: {', '.join(OBJECTIVES)}.")
    if not 1 <= settings.steps <= MAX_IDEAL_STEPS:
        raise LensError(f"Steps must be from 1 to {MAX_IDEAL_STEPS} (the limit on this server); got {settings.steps}.")
    if not MIN_IDEAL_SIZE <= settings.size <= MAX_IDEAL_SIZE:
        raise LensError(f"Image size {settings.size} is out of range: choose {MIN_IDEAL_SIZE}..{MAX_IDEAL_SIZE} pixels.")
    if settings.lr <= 0:
        raise LensError("The learning rate must be positive.")
    if min(settings.tv, settings.l2, settings.blur) < 0:
        raise LensError("Regulariser weights (TV, L2, blur) cannot be negative.")
    if not 1 <= settings.batch <= MAX_IDEAL_BATCH:
        raise LensError(f"The batch of augmented copies must be from 1 to {MAX_IDEAL_BATCH}.")
    if settings.jitter + settings.jitter // 2 >= settings.size + 2 * settings.pad - 8:
        raise LensError("Jitter is too large for this image size.")
    if not 0 < settings.scale[0] <= settings.scale[1]:
        raise LensError("The scale range must be positive and low ≤ high.")


@dataclass(frozen=True)
class IdealResult:
    """The image, the history of every term, and how long it took."""

    image: np.ndarray  # RGB uint8 (size, size, 3)
    target: Target
    target_name: str
    prob: float | None  # the network's probability of the target class for the final uint8 image, unaugmented
    rank: int | None  # 1 = the network's top class
    activation: float  # objective score of the final image
    history: dict[str, list[float]] = field(default_factory=dict)  # "prob", "activation", each loss term, "total"
    seconds: float = 0.0
    steps_done: int = 0
    stopped: bool = False
    settings: IdealSettings = field(default_factory=IdealSettings)


# --- the loop ------------------------------------------------------------------------------------
def ideal_image(
    backbone: Backbone,
    target: Target,
    settings: IdealSettings | None = None,
    callback: Callable[[Progress], None] | None = None,
    should_stop: StopSignal = None,
) -> IdealResult:
    """Optimise an image so the backbone sees `target`, step by step (a long job, see explain.jobs).

    callback(progress) runs after each step: metrics "prob" (nan for a channel), "activation" and every
    weighted loss term with their "total"; preview is the image so far (RGB uint8). should_stop is asked
    after each step and ends the loop early, keeping the image made so far (result.stopped).
    """
    settings = settings or PRESETS[DEFAULT_PRESET]
    check_settings(settings)
    start = time.perf_counter()
    device = backbone.device
    model = backbone.model
    generator = torch.Generator().manual_seed(int(settings.seed))
    param = make_param(settings.method, settings.size, generator, device)
    optimizer = torch.optim.Adam(param.params, lr=settings.lr)
    transform = settings.transforms()
    layers = [target.layer] if target.kind != "class" else []
    log = ProgressLog(settings.steps, callback)
    steps_done, stopped = 0, False

    with hooked(model, layers, keep_grad=True) as maps:
        for step in range(1, settings.steps + 1):
            image = param.render()
            x = transform(image.expand(settings.batch, -1, -1, -1), generator)
            if settings.net_size and x.shape[-1] != settings.net_size:
                x = F.interpolate(x, size=(settings.net_size, settings.net_size), mode="bilinear", align_corners=False, antialias=False)
            logits = backbone.logits(x)
            score = objective_scores(target, logits, maps, settings.objective)
            terms = {"objective": -score.mean()}
            for name, weight, penalty in (("tv", settings.tv, total_variation), ("l2", settings.l2, l2_norm), ("blur", settings.blur, blur_penalty)):
                if weight > 0:
                    terms[name] = weight * penalty(image).mean()
            total = sum(terms.values())
            grads = torch.autograd.grad(total, param.params)  # never touches the shared model's .grad
            for p, g in zip(param.params, grads):
                p.grad = g
            optimizer.step()
            param.clamp()
            steps_done = step

            prob = float(logits.detach().softmax(1)[:, target.index].mean()) if target.kind == "class" else float("nan")
            metrics = {"prob": prob, "activation": float(score.detach().mean())}
            metrics |= {k: float(v.detach()) for k, v in terms.items()} | {"total": float(total.detach())}
            log.report(step, "optimise", metrics, preview=to_image(image) if callback is not None else None)
            if stop_requested(should_stop):
                stopped = step < settings.steps
                break

        with torch.no_grad():
            final = to_image(param.render())
    return _judged(backbone, target, settings, final, log.history, time.perf_counter() - start, steps_done, stopped)


def _judged(backbone: Backbone, target: Target, settings: IdealSettings, image: np.ndarray, history: dict,
            seconds: float, steps_done: int, stopped: bool) -> IdealResult:
    """The result for a uint8 image, judged as a user would see it: the unaugmented image, once through the network."""
    layers = [target.layer] if target.kind != "class" else []
    with torch.no_grad(), hooked(backbone.model, layers) as maps:
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255).to(backbone.device)
        logits = backbone.logits(x)
        activation = float(objective_scores(target, logits, maps, settings.objective)[0])
    probs = logits.softmax(1)[0].cpu()
    prob = rank = None
    if target.kind == "class":
        prob = float(probs[target.index])
        rank = int((probs > probs[target.index]).sum()) + 1
    return IdealResult(
        image=image,
        target=target,
        target_name=target.describe(backbone),
        prob=prob,
        rank=rank,
        activation=activation,
        history=history,
        seconds=seconds,
        steps_done=steps_done,
        stopped=stopped,
        settings=settings,
    )


def result_so_far(backbone: Backbone, target: Target, settings: IdealSettings, progress: Progress) -> IdealResult:
    """A run cut short (its last progress report, with the image as its preview) as a stopped result, judged
    like a finished one."""
    if progress.preview is None:
        raise LensError("This run reported no image yet, so there is nothing to keep.")
    history = {name: list(values) for name, values in progress.history.items()}
    return _judged(backbone, target, settings, np.asarray(progress.preview), history, 0.0, progress.step, True)


def compare_runs(chosen: str, settings: IdealSettings) -> list[tuple[str, IdealSettings]]:
    """Both recipes for one target: the chosen preset with its settings, the other with the same budget.

    The same steps, size and seed make the two pictures comparable; every other knob is the other preset's own.
    """
    if chosen not in PRESETS:
        raise LensError(f"Unknown preset '{chosen}'. Choose one of: {', '.join(PRESETS)}.")
    return [(name, settings if name == chosen else replace(PRESETS[name], steps=settings.steps, size=settings.size, seed=settings.seed))
            for name in ("course", "clear")]


def held_out_judge(backbone: Backbone, target: Target) -> str | None:
    """An offline ImageNet network other than `backbone` that judges its ideal image of a class, never having seen it
    made; None for a channel target or a model with its own classes (nothing comparable to ask)."""
    if target.kind != "class" or backbone.num_classes != 1000:
        return None
    for name in ("efficientnet_lite1", "efficientnet_lite0", "efficientnet_lite2"):
        if name != backbone.name and name in REGISTRY and weight_status(name) == "offline":
            return name
    return None
