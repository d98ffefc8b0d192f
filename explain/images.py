"""Decode, validate, orient, resize (OpenCV), crop, normalise and convert images to and from tensors."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from explain.errors import LensError
from explain.limits import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS

INTERPOLATIONS: dict[str, int] = {
    "nearest": cv2.INTER_NEAREST,
    "linear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "cubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
}



@dataclass(frozen=True)
class Preprocess:
    """How a photo becomes the network's input: resize shorter side, centre crop, normalise."""

    input_size: int
    resize_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "linear"


SAMPLES: dict[str, str] = {
    "chelsea": "Chelsea the cat",
    "astronaut": "Astronaut Eileen Collins",
    "coffee": "A cup of coffee",
    "rocket": "A rocket on the launch pad",
    "hubble_deep_field": "Hubble deep field",
    "immunohistochemistry": "Stained tissue",
    "brick": "Brick wall (texture)",
    "grass": "Grass (texture)",
    "gravel": "Gravel (texture)",
    "camera": "Cameraman (grayscale)",
}


def decode_image(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS, name: str = "image") -> np.ndarray:
    """Decode image bytes (JPEG, PNG, WebP, BMP, GIF's first frame, TIFF) to upright RGB uint8 (H, W, 3)."""
    if not data:
        raise LensError(f"'{name}' is empty (0 bytes). Choose an image file.")
    if len(data) > MAX_IMAGE_BYTES:
        raise LensError(f"'{name}' is {len(data) / 2**20:.0f} MB; the limit is {MAX_IMAGE_BYTES // 2**20} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > max_pixels:
                raise LensError(
                    f"'{name}' is {width}×{height} = {width * height / 1e6:.0f} megapixels; "
                    f"the limit is {max_pixels / 1e6:.0f} megapixels. Resize it first."
                )
            img.seek(0)  # first frame of an animation
            img.load()
            img = ImageOps.exif_transpose(img)
            rgb = _to_rgb(img)
    except LensError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise LensError(
            f"'{name}' has far more than {max_pixels / 1e6:.0f} megapixels (a decompression bomb?). Resize it first."
        ) from None
    except UnidentifiedImageError:
        raise LensError(f"'{name}' is not an image this app can read (JPEG, PNG, WebP, BMP, GIF, TIFF).") from None
    except Exception as exc:  # truncated or corrupt data raises many different errors inside PIL
        raise LensError(f"'{name}' could not be decoded: the file is damaged or truncated ({type(exc).__name__}).") from None
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise LensError(f"'{name}' has no pixels.")
    return rgb


def _to_rgb(img: Image.Image) -> np.ndarray:
    """Any PIL mode (L, LA, P, RGBA, CMYK, I;16, I, F, 1) to RGB uint8; transparency goes on white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if img.mode.startswith("I;16"):
            arr = arr / 257.0
        elif arr.max() > 255:
            arr = arr / max(arr.max(), 1.0) * 255.0
        gray = np.clip(arr, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(arr)


def read_image(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Read an image file from disk (see decode_image)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LensError(f"Image file '{path}' does not exist.") from None
    except IsADirectoryError:
        raise LensError(f"'{path}' is a folder, not an image file.") from None
    except OSError as exc:
        raise LensError(f"Could not read '{path}': {exc.strerror}.") from None
    return decode_image(data, max_pixels=max_pixels, name=path.name)


@lru_cache(maxsize=16)
def _sample(name: str) -> np.ndarray:
    import skimage.data

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.shape[2] == 4:
        img = img[..., :3]
    if img.dtype != np.uint8:
        img = (np.clip(img, 0, 1) * 255).astype(np.uint8) if img.dtype.kind == "f" else img.astype(np.uint8)
    img.setflags(write=False)
    return img


def sample_image(name: str) -> np.ndarray:
    """A real photo shipped by scikit-image (works offline)."""
    if name not in SAMPLES:
        raise LensError(f"Unknown sample '{name}'. Samples: {', '.join(SAMPLES)}.")
    return _sample(name)


def encode_png(image: np.ndarray) -> bytes:
    """RGB uint8 image to PNG bytes."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
    if not ok:
        raise LensError("Could not encode the image as PNG.")
    return buf.tobytes()


def save_png(image: np.ndarray, path: str | Path) -> Path:
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_png(image))
    return path


def resize(image: np.ndarray, size: tuple[int, int], interpolation: str = "linear") -> np.ndarray:
    """Resize to (width, height) with OpenCV; interpolation is one of INTERPOLATIONS."""
    if interpolation not in INTERPOLATIONS:
        raise LensError(f"Unknown interpolation '{interpolation}'. Choose one of: {', '.join(INTERPOLATIONS)}.")
    w, h = int(size[0]), int(size[1])
    if w < 1 or h < 1:
        raise LensError(f"Cannot resize to {w}×{h}.")
    if (image.shape[1], image.shape[0]) == (w, h):
        return image
    return cv2.resize(image, (w, h), interpolation=INTERPOLATIONS[interpolation])


def resize_shorter_side(image: np.ndarray, side: int, interpolation: str = "linear") -> np.ndarray:
    h, w = image.shape[:2]
    scale = side / min(h, w)
    return resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation)


def crop_box(height: int, width: int, size: int) -> tuple[int, int]:
    """(top, left) of the centre crop of side `size` (the offset is floored, and 0 when the image is smaller)."""
    return max(0, (height - size) // 2), max(0, (width - size) // 2)


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    top, left = crop_box(image.shape[0], image.shape[1], size)
    return image[top : top + size, left : left + size]


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """RGB uint8 (H, W, 3) to float tensor (1, 3, H, W) in [0, 1]."""
    image = np.ascontiguousarray(image)
    if not image.flags.writeable:  # shared sample photos are read-only; torch wants writable memory
        image = image.copy()
    return torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def to_image(tensor: torch.Tensor) -> np.ndarray:
    """Float tensor (1, 3, H, W) or (3, H, W) in [0, 1] to RGB uint8 (H, W, 3), rounded."""
    t = tensor.detach().float().cpu()
    if t.ndim == 4:
        t = t[0]
    return (t.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()).copy()


@dataclass(frozen=True)
class Prepared:
    """Every step from a photo to the network input, for showing and for re-use."""

    original: np.ndarray
    resized: np.ndarray  # shorter side = preprocess.resize_size
    cropped: np.ndarray  # centre crop, preprocess.input_size square
    tensor: torch.Tensor  # (1, 3, S, S) in [0, 1]; Backbone.normalize gives the network's input
    interpolation: str


def prepare(image: np.ndarray, preprocess: Preprocess, interpolation: str | None = None) -> Prepared:
    """Resize the shorter side, centre-crop, and make a [0, 1] tensor."""
    interpolation = interpolation or preprocess.interpolation
    resized = resize_shorter_side(image, preprocess.resize_size, interpolation)
    cropped = np.ascontiguousarray(center_crop(resized, preprocess.input_size))
    return Prepared(image, resized, cropped, to_tensor(cropped), interpolation)


def normalize(x01: torch.Tensor, preprocess: Preprocess) -> torch.Tensor:
    """(x − mean) / std per channel, for a batch (N, 3, H, W) in [0, 1], on the batch's device."""
    mean = torch.tensor(preprocess.mean, device=x01.device).view(1, 3, 1, 1)
    std = torch.tensor(preprocess.std, device=x01.device).view(1, 3, 1, 1)
    return (x01 - mean) / std


def normalized_stats(tensor01: torch.Tensor, preprocess: Preprocess) -> list[dict]:
    """Per-channel mean/std/min/max of the normalised input tensor (what the network sees)."""
    x = normalize(tensor01.cpu(), preprocess)
    return [
        {
            "channel": ch,
            "mean": float(x[0, i].mean()),
            "std": float(x[0, i].std()),
            "min": float(x[0, i].min()),
            "max": float(x[0, i].max()),
        }
        for i, ch in enumerate("RGB")
    ]
