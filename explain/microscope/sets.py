"""Image sets a channel microscope can index: a folder or zip of photos, a dataset in memory, and the default set.

An image set is a list of `SetImage`s: a name, a digest of its content (the bytes of a file, the pixels of an
image in memory) and a loader that decodes it only when the index is built. The digests name the set, so an
index is found again for the same photos and never for other ones. The default set works on a fresh machine
without internet: the photos scikit-image ships, each whole and as deterministic crops, flipped or not.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from explain.errors import LensError
from explain.images import decode_image
from explain.limits import MAX_INDEX_IMAGES


@dataclass(frozen=True)
class SetImage:
    """One photo of a set: its name (a path inside the set), a digest of its content, and how to decode it."""

    name: str
    digest: str
    load: Callable[[], np.ndarray]  # RGB uint8 (H, W, 3)


@dataclass(frozen=True)
class ImageCollection:
    """The photos to index and what was left out ("file: why")."""

    title: str  # what the set is, for people ("folder photos/", "scikit-image samples and crops")
    images: tuple[SetImage, ...]
    skipped: tuple[str, ...] = ()
    root: str = ""  # the folder the names are relative to (a folder on disk), else ""

    def __len__(self) -> int:
        return len(self.images)

    @property
    def digest(self) -> str:
        """One digest for the whole set: its photos' digests in order."""
        return hashlib.sha1("\n".join(i.digest for i in self.images).encode()).hexdigest()


def pixels_digest(image: np.ndarray) -> str:
    """A digest of an image's pixels and shape (the same photo decoded twice gives the same one)."""
    image = np.ascontiguousarray(image)
    return hashlib.sha1(image.tobytes() + repr(image.shape).encode()).hexdigest()


def _checked(title: str, images: list[SetImage], skipped: list[str], root: str = "") -> ImageCollection:
    if not images:
        shown = "; ".join(skipped[:5])
        raise LensError(f"No images found in {title}. Give a folder or zip of photos (JPEG, PNG, …).{' Skipped: ' + shown if shown else ''}")
    if len(images) > MAX_INDEX_IMAGES:
        raise LensError(f"{title} holds more than {MAX_INDEX_IMAGES} images (MAX_INDEX_IMAGES). Index fewer photos.")
    return ImageCollection(title, tuple(images), tuple(skipped), root)


def _from_entries(title: str, entries, skipped: list[str], root: str = "") -> ImageCollection:
    """Photos from (path parts, reader) entries of the transfer readers: any layout, class folders or none."""
    from explain.transfer.datasets import IMAGE_EXTENSIONS, is_ignored

    images: list[SetImage] = []
    for parts, reader in entries:
        if is_ignored(parts):
            continue
        name = "/".join(parts)
        if not parts[-1].lower().endswith(IMAGE_EXTENSIONS):
            skipped.append(f"{name}: not an image file")
            continue
        if len(images) >= MAX_INDEX_IMAGES:  # counted before reading: a huge folder is refused, not hashed
            raise LensError(f"{title} holds more than {MAX_INDEX_IMAGES} images (MAX_INDEX_IMAGES). Index fewer photos.")
        try:
            data = reader()
        except LensError as exc:
            skipped.append(f"{name}: {exc}")
            continue
        images.append(SetImage(name, hashlib.sha1(data).hexdigest(), lambda reader=reader, name=name: decode_image(reader(), name=name)))
    return _checked(title, images, skipped, root)


def folder_images(path: str | os.PathLike) -> ImageCollection:
    """Every photo under a folder (sub-folders included, in a stable order); other files are skipped."""
    from explain.transfer.datasets import folder_entries

    entries, skipped = folder_entries(path)
    return _from_entries(f"'{os.fspath(path)}'", entries, skipped, os.path.abspath(path))


def zip_images(data: bytes, name: str = "photos.zip") -> ImageCollection:
    """Every photo in a zip, read from memory with the transfer reader's safety checks (unsafe paths, bombs)."""
    from explain.transfer.datasets import zip_entries

    entries, skipped = zip_entries(data, name)
    return _from_entries(f"'{name}'", entries, skipped)


def memory_images(title: str, images: Sequence[np.ndarray], names: Sequence[str]) -> ImageCollection:
    """Photos already decoded (the Transfer learning page's dataset)."""
    if len(images) != len(names):
        raise LensError("Give one name per image.")
    items = [SetImage(n, pixels_digest(img), lambda img=img: img) for img, n in zip(images, names)]
    return _checked(title, items, [])


def path_images(path: str | os.PathLike) -> ImageCollection:
    """A folder or a .zip file on disk (the command line's DIR)."""
    if os.path.isdir(path):
        return folder_images(path)
    if os.path.isfile(path) and str(path).lower().endswith(".zip"):
        with open(path, "rb") as handle:
            return zip_images(handle.read(), os.path.basename(path))
    raise LensError(f"'{os.fspath(path)}' is neither a folder nor a .zip file. Give a folder of photos or a zip of them.")


# ---------------------------------------------------------------- the default set: scikit-image's photos and crops

# scikit-image samples that load without internet, photos and textures a network has something to say about
SAMPLE_PHOTOS = (
    "chelsea", "astronaut", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "colorwheel",
    "brick", "grass", "gravel", "camera", "coins", "moon", "clock", "cell",
)
CROPS_PER_PHOTO = 9  # 16 photos x (1 + 9) = 160 images: enough for a channel's top 9 to differ from photo to photo
CROP_SIDE = 256  # the crops' shorter side; every registry network's resize side is near it
SAMPLES_SEED = 0


@lru_cache(maxsize=1)
def _sample_photo(name: str) -> np.ndarray:
    import skimage.data

    img = skimage.data.stereo_motorcycle()[0] if name == "stereo_motorcycle" else getattr(skimage.data, name)()
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.dtype != np.uint8:
        img = (np.clip(img, 0, 1) * 255).astype(np.uint8) if img.dtype.kind == "f" else img.astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def sample_crop(photo: np.ndarray, k: int, seed: int = SAMPLES_SEED) -> np.ndarray:
    """Crop k of a photo (k = 0: the whole photo): a random square of 30-80 % of the shorter side, flipped half the time.

    Deterministic: the same photo, k and seed always give the same pixels."""
    h, w = photo.shape[:2]
    if k == 0:
        scale = CROP_SIDE / min(h, w)
        return cv2.resize(photo, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng([seed, k])
    side = int(min(h, w) * rng.uniform(0.3, 0.8))
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    patch = photo[top : top + side, left : left + side]
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    interpolation = cv2.INTER_AREA if side >= CROP_SIDE else cv2.INTER_CUBIC
    return cv2.resize(np.ascontiguousarray(patch), (CROP_SIDE, CROP_SIDE), interpolation=interpolation)


def sample_images(crops: int = CROPS_PER_PHOTO, photos: Sequence[str] = SAMPLE_PHOTOS) -> ImageCollection:
    """The default set: every photo of SAMPLE_PHOTOS whole, then `crops` deterministic crops of each."""
    from skimage import __version__ as version

    if crops < 0:
        raise LensError("The number of crops per photo cannot be negative.")
    items = []
    for name in photos:
        for k in range(crops + 1):
            label = f"{name}/whole.png" if k == 0 else f"{name}/crop{k:02d}.png"
            # the recipe names the pixels: scikit-image's photos do not change between runs, so neither do the crops
            digest = hashlib.sha1(f"skimage {version}:{name}:{k}:{SAMPLES_SEED}:{CROP_SIDE}".encode()).hexdigest()
            items.append(SetImage(label, digest, lambda name=name, k=k: sample_crop(_sample_photo(name), k)))
    return _checked("scikit-image samples and crops", items, [])
