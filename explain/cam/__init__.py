"""Where the network looked, and how far to trust the map.

Layer methods weight the channels of one convolutional layer (Grad-CAM and its family by gradients,
Score-CAM and Ablation-CAM by forward passes, Eigen-CAM by a principal component); pixel methods
work on the input itself (gradient saliency, SmoothGrad, integrated gradients, guided backprop,
occlusion). Maps follow pytorch-grad-cam's conventions (ReLU on the weighted sum, min-max per map,
bilinear upsampling to the input size) so results compare 1:1.

    base      the method table, CamResult, targets, layers, scaling
    gradient  Grad-CAM, Grad-CAM++, XGrad-CAM, Layer-CAM, HiRes-CAM, the counterfactual map
    forward   Score-CAM, Ablation-CAM, Eigen-CAM (no gradients; batched forward passes)
    pixels    saliency, SmoothGrad, integrated gradients, guided backprop, occlusion
    compute   compute_cam (every method), layer_cams (one map per layer)
    draw      heatmap, overlay_cam, mass_inside
"""

from explain.cam.base import (
    CAM_METHODS,
    CLASS_AGNOSTIC,
    DEFAULT_CAM_METHOD,
    FORWARD_LAYER_METHODS,
    GRADIENT_LAYER_METHODS,
    INPUT_LAYER,
    LAYER_METHODS,
    PIXEL_METHODS,
    CamResult,
    ClassRef,
    check_method,
    default_layer,
    layer_list,
    map_layers,
)
from explain.cam.compute import compute_cam, layer_cams
from explain.cam.draw import heatmap, mass_inside, overlay_cam

__all__ = [
    "CAM_METHODS",
    "CLASS_AGNOSTIC",
    "DEFAULT_CAM_METHOD",
    "FORWARD_LAYER_METHODS",
    "GRADIENT_LAYER_METHODS",
    "INPUT_LAYER",
    "LAYER_METHODS",
    "PIXEL_METHODS",
    "CamResult",
    "ClassRef",
    "check_method",
    "compute_cam",
    "default_layer",
    "heatmap",
    "layer_cams",
    "layer_list",
    "map_layers",
    "mass_inside",
    "overlay_cam",
]
