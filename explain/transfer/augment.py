"""Augmentation for training on few photos: torchvision's RandomResizedCrop + RandomHorizontalFlip, on uint8 photos."""

from __future__ import annotations

import math

import cv2
import numpy as np

from explain.images import Preprocess


def random_resized_crop(
    image: np.ndarray,
    size: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.25, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip: bool = True,
) -> np.ndarray:
    """RandomResizedCrop + RandomHorizontalFlip (torchvision's recipe) on an RGB uint8 image."""
    h, w = image.shape[:2]
    area = h * w
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            break
    else:  # fall back to the largest centred crop, like torchvision
        cw = ch = min(h, w)
        top, left = (h - ch) // 2, (w - cw) // 2
    crop = image[top : top + ch, left : left + cw]
    if flip and rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(cv2.resize(np.ascontiguousarray(crop), (size, size), interpolation=cv2.INTER_AREA))


def augmentation_preview(image: np.ndarray, preprocess: Preprocess, count: int = 8, seed: int = 0) -> list[np.ndarray]:
    """What the network sees of one photo in `count` epochs with augmentation on."""
    rng = np.random.default_rng(seed)
    return [random_resized_crop(image, preprocess.input_size, rng) for _ in range(count)]
