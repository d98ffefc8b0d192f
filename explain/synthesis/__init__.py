"""Ideal images: start from noise and change the picture by gradient steps until the network sees a target.

A picture is a *parameterisation* (raw pixels, or an FFT spectrum with decorrelated colours), a list of
small random *transforms* applied before every forward pass (padding, jitter, scale, rotation), and an
*objective* (a class, the mean of one channel, one neuron) plus weighted *regularisers* (TV, L2, blur,
in explain.regularisers). `ideal_image` composes them in one loop, a long job (explain.jobs). The course
recipe is pixels + TV; the clear recipe is the one feature-visualisation research uses (Olah et al. 2017,
Lucid/Lucent): FFT + decorrelated colour + robustness transforms, which gives pictures that a second
network also recognises.

    param        what the optimiser changes: pixels or a spectrum
    transforms   pad, jitter, scale, rotate: the random views of every step
    objectives   Target (class, channel, neuron) and its score
    render       settings and presets, the loop, the comparison of both recipes and its judge
"""

from explain.synthesis.objectives import OBJECTIVES, Target, channel_target, class_target, objective_scores
from explain.synthesis.param import PARAMETERISATIONS, ImageParam, fft_param, make_param, pixel_param
from explain.synthesis.render import (
    DEFAULT_PRESET,
    PRESET_OF_METHOD,
    PRESETS,
    IdealResult,
    IdealSettings,
    check_settings,
    compare_runs,
    held_out_judge,
    ideal_image,
    preset,
    result_so_far,
)
from explain.synthesis.transforms import (
    Transform,
    compose,
    jitter,
    pad,
    random_rotate,
    random_scale,
    random_scale_rotate,
)

__all__ = [
    "DEFAULT_PRESET", "OBJECTIVES", "PARAMETERISATIONS", "PRESET_OF_METHOD", "PRESETS", "IdealResult", "IdealSettings", "ImageParam", "Target",
    "Transform", "channel_target", "check_settings", "class_target", "compare_runs", "compose", "fft_param",
    "held_out_judge", "ideal_image", "jitter", "make_param", "objective_scores", "pad", "pixel_param", "preset",
    "random_rotate", "result_so_far", "random_scale", "random_scale_rotate",
]
