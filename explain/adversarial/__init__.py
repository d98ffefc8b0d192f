"""Adversarial examples: FGSM, PGD (L∞ / L2) and MI-FGSM, with budgets in /255 and honest success checks.

Everything here works in *grey levels* (0…255 as floats): the budget ε, the step size and the
perturbation are whole numbers of levels, because the image a user keeps is a uint8 PNG. Every
iterate the network sees is already the rounded, clipped image that would be saved, so an
attack that only works between two grey levels is never counted as a success.

The image that is attacked (and saved) is the photo resized to the backbone's ``resize_size``
(shorter side); only its centre crop and a margin of a few pixels around it are changed, so that a
crop a pixel or two off centre (torchvision rounds the offset where we floor it) sees it too. Classifying that PNG again with the normal
pipeline (``classify_images``: resize shorter side, which is then a no-op, and centre crop) feeds
the network exactly the attacked crop.

    settings   AttackSettings: method, ε, steps, step sizes, leak (ATTACKS, NORMS)
    leaky      the leaky gradient through switched-off ReLUs
    views      the views other pipelines take of a saved PNG: sampled during the attack (ViewSampler), judged after (robustness)
    fast       the attack's twin of the network: BatchNorm folded into the convs (same logits, faster passes)
    steps      one batch of crops: quantise, project, the loop (attack_batch, a long job)
    run        photos end to end, judged on the saved PNG (attack_images, a long job; AttackResult, AttackRun)
"""

from explain.adversarial.leaky import leaky_relus
from explain.adversarial.run import (
    AttackResult,
    AttackRun,
    attack_images,
    default_batch_size,
    perturbation_image,
    perturbation_metrics,
)
from explain.adversarial.settings import ATTACKS, MAX_LEAK, MAX_VIEWS, NORMS, AttackSettings, default_target
from explain.adversarial.steps import BatchOutcome, attack_batch, quantise
from explain.adversarial.views import VIEW_FAMILIES, Robustness, ViewSampler, robustness

__all__ = [
    "ATTACKS", "MAX_LEAK", "MAX_VIEWS", "NORMS", "VIEW_FAMILIES", "Robustness", "ViewSampler", "robustness", "AttackResult", "AttackRun", "AttackSettings", "BatchOutcome", "attack_batch",
    "attack_images", "default_batch_size", "default_target", "leaky_relus", "perturbation_image", "perturbation_metrics", "quantise",
]
