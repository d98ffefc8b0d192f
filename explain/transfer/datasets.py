"""Datasets for transfer learning: from a folder, a zip, per-class uploads or a built-in demo set; the split."""

from __future__ import annotations

import io
import os
import stat
import unicodedata
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from explain.errors import LensError
from explain.images import decode_image, sample_image
from explain.limits import (
    MAX_DATASET_IMAGES,
    MAX_IMAGE_BYTES,
    MAX_STORED_SIDE,
    ZIP_MAX_ENTRIES,
    ZIP_MAX_RATIO,
    ZIP_MAX_TOTAL_BYTES,
)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
MIN_IMAGES_PER_CLASS = 5  # at least one for validation and a few to learn from
SUBSETS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


@dataclass(frozen=True)
class ImageSet:
    """Photos with their class: RGB uint8 images (shorter side at most MAX_STORED_SIDE)."""

    classes: tuple[str, ...]
    images: tuple[np.ndarray, ...]
    labels: tuple[int, ...]
    names: tuple[str, ...]  # file name of each image, for messages and captions
    subsets: tuple[str, ...] = ()  # "train" / "val" / "test" per image when the folders said so, else empty
    skipped: tuple[str, ...] = ()  # "file: why" for every file that was not used

    def __len__(self) -> int:
        return len(self.images)

    @property
    def split_given(self) -> bool:
        """True when the folders already say which photos are for validation (train/ and val/)."""
        return bool(self.subsets) and "val" in self.subsets

    def counts(self) -> dict[str, int]:
        """Number of images per class."""
        out = dict.fromkeys(self.classes, 0)
        for label in self.labels:
            out[self.classes[label]] += 1
        return out

    def subset(self, indices: Iterable[int]) -> ImageSet:
        idx = list(indices)
        return ImageSet(
            self.classes,
            tuple(self.images[i] for i in idx),
            tuple(self.labels[i] for i in idx),
            tuple(self.names[i] for i in idx),
            tuple(self.subsets[i] for i in idx) if self.subsets else (),
            self.skipped,
        )


@dataclass(frozen=True)
class Splits:
    """Training, validation and (optional) test sets with the same class list."""

    classes: tuple[str, ...]
    train: ImageSet
    val: ImageSet
    test: ImageSet | None
    given: bool  # the folders fixed the split (train/ val/), else a stratified random split


def _clean_class_name(name: str) -> str:
    # macOS writes Korean file names decomposed (NFD); the same class must get the same name everywhere
    return unicodedata.normalize("NFC", name).strip()


def _store(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    short = min(h, w)
    if short <= MAX_STORED_SIDE:
        return image
    scale = MAX_STORED_SIDE / short
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def is_ignored(parts: tuple[str, ...]) -> bool:
    """Operating-system clutter nobody means as data (never listed as skipped)."""
    return any(p == "__MACOSX" or p.startswith(".") or p in ("Thumbs.db", "desktop.ini") for p in parts)


def _layout(paths: list[tuple[str, ...]]) -> tuple[int, bool]:
    """How many leading folders to drop, and whether the first remaining folder names a subset."""
    strip = 0
    while paths and all(len(p) >= strip + 3 for p in paths) and len({p[strip] for p in paths}) == 1:
        strip += 1
    tops = {p[strip].lower() for p in paths if len(p) > strip + 2}
    has_subsets = bool(tops) and tops <= set(SUBSETS) and any(SUBSETS[t] == "train" for t in tops)
    return strip, has_subsets


def _build(entries: list[tuple[tuple[str, ...], Callable[[], bytes]]], skipped: list[str], source: str) -> ImageSet:
    """Turn (path parts, reader) pairs into an ImageSet: folders name the classes (and maybe subsets)."""
    wanted = []
    for parts, reader in entries:
        if is_ignored(parts):
            continue
        if not parts[-1].lower().endswith(IMAGE_EXTENSIONS):
            skipped.append(f"{'/'.join(parts)}: not an image file")
            continue
        wanted.append((parts, reader))
    strip, has_subsets = _layout([p for p, _ in wanted])
    depth = strip + (2 if has_subsets else 1)
    rows = []
    for parts, reader in wanted:
        rel = parts[strip:]
        if len(parts) <= depth:
            skipped.append(f"{'/'.join(parts)}: not inside a class folder")
            continue
        subset = SUBSETS[rel[0].lower()] if has_subsets else ""
        rows.append((subset, _clean_class_name(rel[1] if has_subsets else rel[0]), parts, reader))
    if len(rows) > MAX_DATASET_IMAGES:
        raise LensError(f"{source} holds {len(rows)} images; the limit is {MAX_DATASET_IMAGES}. Use fewer images per class.")
    classes = sorted({r[1] for r in rows if r[1]})
    index = {c: i for i, c in enumerate(classes)}
    images, labels, names, subsets = [], [], [], []
    for subset, cls, parts, reader in rows:
        name = "/".join(parts)
        try:
            image = decode_image(reader(), name=name)
        except LensError as exc:
            skipped.append(f"{name}: {exc}")
            continue
        images.append(_store(image))
        labels.append(index[cls])
        names.append(name)
        subsets.append(subset)
    used = sorted(set(labels))
    if len(used) != len(classes):  # a class whose every file failed to decode
        remap = {old: new for new, old in enumerate(used)}
        classes = [classes[i] for i in used]
        labels = [remap[label] for label in labels]
    return ImageSet(
        tuple(classes), tuple(images), tuple(labels), tuple(names), tuple(subsets) if has_subsets else (), tuple(skipped)
    )


def _zip_name(info: zipfile.ZipInfo) -> str:
    """The entry name as the user wrote it: zips without the UTF-8 flag come from Windows (often cp949)."""
    name = info.filename
    if info.flag_bits & 0x800:
        return name
    raw = name.encode("cp437", errors="replace")
    for encoding in ("utf-8", "cp949"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return name


def _safe_parts(name: str) -> tuple[str, ...] | None:
    """Path parts of a zip entry, or None when it points outside the archive (absolute, .., drive)."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return None
    parts = tuple(p for p in PurePosixPath(norm).parts if p not in ("", "."))
    if not parts or any(p == ".." for p in parts):
        return None
    return parts


def dataset_from_zip(data: bytes, name: str = "dataset.zip") -> ImageSet:
    """Read a zip with one folder per class (or train/ val/ [test/] folders holding class folders).

    Nothing is written to disk. Unsafe entries (absolute or ../ paths, links), encrypted entries and
    non-image files are skipped and listed in ``skipped``; too many entries or too many bytes is refused.
    """
    entries, skipped = zip_entries(data, name)
    return _check_readable(_build(entries, skipped, f"'{name}'"), name)


Entry = tuple[tuple[str, ...], Callable[[], bytes]]  # (path parts, a reader of the file's bytes)


def zip_entries(data: bytes, name: str = "dataset.zip") -> tuple[list[Entry], list[str]]:
    """The safe file entries of a zip, each (path parts, reader), and "file: why" for every entry refused (see dataset_from_zip)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise LensError(f"'{name}' is not a readable zip file. Make a .zip with one folder per class.") from None
    files = [i for i in infos if not i.is_dir()]
    if len(infos) > ZIP_MAX_ENTRIES:
        raise LensError(f"'{name}' has {len(infos)} entries; the limit is {ZIP_MAX_ENTRIES}.")
    total = sum(i.file_size for i in files)
    if total > ZIP_MAX_TOTAL_BYTES:
        raise LensError(
            f"'{name}' would unpack to {total / 2**20:.0f} MB; the limit is {ZIP_MAX_TOTAL_BYTES // 2**20} MB."
        )
    skipped: list[str] = []
    entries = []
    for info in files:
        shown = _zip_name(info)
        parts = _safe_parts(shown)
        if parts is None:
            skipped.append(f"{shown}: unsafe path (absolute or outside the archive)")
            continue
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            skipped.append(f"{shown}: a link, not a file")
            continue
        if info.flag_bits & 0x1:
            skipped.append(f"{shown}: encrypted")
            continue
        if info.file_size > MAX_IMAGE_BYTES:
            skipped.append(f"{shown}: {info.file_size / 2**20:.0f} MB, over the {MAX_IMAGE_BYTES // 2**20} MB limit per image")
            continue
        if info.compress_size and info.file_size / info.compress_size > ZIP_MAX_RATIO:
            skipped.append(f"{shown}: compressed {info.file_size // max(1, info.compress_size)}:1, not a photo")
            continue
        entries.append((parts, _zip_reader(archive, info)))
    return entries, skipped


def _zip_reader(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            with archive.open(info) as handle:
                # zipfile stops at the declared size, so a lying header cannot make this grow
                return handle.read(MAX_IMAGE_BYTES + 1)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
            raise LensError(f"damaged zip entry ({type(exc).__name__})") from None

    return read


def dataset_from_folder(path: str | os.PathLike) -> ImageSet:
    """Read a folder with one sub-folder per class (or train/ val/ [test/] folders holding class folders)."""
    if not Path(path).is_dir():
        raise LensError(f"'{path}' is not a folder. Give a folder with one sub-folder of images per class.")
    entries, skipped = folder_entries(path)
    return _check_readable(_build(entries, skipped, f"'{path}'"), str(path))


def folder_entries(path: str | os.PathLike) -> tuple[list[Entry], list[str]]:
    """Every file under a folder in a stable order, each (path parts, reader of at most MAX_IMAGE_BYTES); links are refused."""
    root = Path(path)
    if not root.is_dir():
        raise LensError(f"'{path}' is not a folder. Give a folder of images.")
    skipped: list[str] = []
    entries = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for fname in sorted(filenames):
            full = Path(dirpath) / fname
            parts = full.relative_to(root).parts
            if full.is_symlink():
                skipped.append(f"{'/'.join(parts)}: a link, not a file")
                continue
            entries.append((parts, lambda full=full: _read_limited(full)))
    return entries, skipped


def _read_limited(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_IMAGE_BYTES:
            raise LensError(f"{path.stat().st_size / 2**20:.0f} MB, over the {MAX_IMAGE_BYTES // 2**20} MB limit per image")
        return path.read_bytes()
    except OSError as exc:
        raise LensError(f"could not be read ({exc.strerror})") from None


def dataset_from_uploads(files_by_class: dict[str, list[tuple[str, bytes]]]) -> ImageSet:
    """Build a dataset from per-class uploads and camera shots: {class name: [(file name, bytes), ...]}."""
    entries = []
    for cls, files in files_by_class.items():
        cls = _clean_class_name(str(cls))
        if not cls:
            raise LensError("Every class needs a name.")
        if "/" in cls or "\\" in cls:
            raise LensError(f"Class name '{cls}' may not contain '/' or '\\'.")
        for fname, data in files:
            base = os.path.basename(str(fname).replace("\\", "/")) or "image"
            entries.append(((cls, base), lambda data=data: data))
    return _check_readable(_build(entries, [], "The upload"), "the upload")


def _check_readable(ds: ImageSet, source: str) -> ImageSet:
    if len(ds) == 0:
        shown = ds.skipped[:10]
        more = f"; and {len(ds.skipped) - len(shown)} more" if len(ds.skipped) > len(shown) else ""
        hint = f" Skipped {len(ds.skipped)} file(s): {'; '.join(shown)}{more}." if ds.skipped else ""
        raise LensError(
            f"No images found in {source}. Put the photos into one folder per class "
            f"(for example cats/1.jpg, dogs/1.jpg).{hint}"
        )
    return ds


DEMO_TITLES: dict[str, str] = {
    "textures": "Textures: brick, grass, gravel (patches of scikit-image photos)",
    "textures_ko": "Textures with Korean class names: 벽돌, 잔디, 자갈",
    "photos": "Photos: cat, coffee, astronaut, rocket (patches)",
}
# class name -> scikit-image sample it is cut from
DEMO_CLASSES: dict[str, dict[str, str]] = {
    "textures": {"brick": "brick", "grass": "grass", "gravel": "gravel"},
    "textures_ko": {"벽돌": "brick", "잔디": "grass", "자갈": "gravel"},
    "photos": {"cat": "chelsea", "coffee": "coffee", "astronaut": "astronaut", "rocket": "rocket"},
}
DEMO_SETS: dict[str, tuple[str, dict[str, str]]] = {name: (DEMO_TITLES[name], DEMO_CLASSES[name]) for name in DEMO_TITLES}


def demo_dataset(name: str = "textures", per_class: int = 24, size: int = 128, seed: int = 0) -> ImageSet:
    """A small built-in dataset: random patches cut from photos that scikit-image ships (offline)."""
    if name not in DEMO_SETS:
        raise LensError(f"Unknown demo set '{name}'. Choose one of: {', '.join(DEMO_SETS)}.")
    if per_class < MIN_IMAGES_PER_CLASS:
        raise LensError(f"A demo set needs at least {MIN_IMAGES_PER_CLASS} images per class.")
    rng = np.random.default_rng(seed)
    images, labels, names = [], [], []
    classes = tuple(DEMO_SETS[name][1])
    for label, cls in enumerate(classes):
        photo = sample_image(DEMO_SETS[name][1][cls])
        h, w = photo.shape[:2]
        for i in range(per_class):
            side = int(rng.integers(min(h, w) // 4, min(h, w) // 2 + 1))
            top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            patch = photo[top : top + side, left : left + side]
            if rng.random() < 0.5:
                patch = patch[:, ::-1]
            images.append(np.ascontiguousarray(cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)))
            labels.append(label)
            names.append(f"{cls}/{i:03d}.png")
    return ImageSet(classes, tuple(images), tuple(labels), tuple(names))


def split_dataset(ds: ImageSet, val_fraction: float = 0.2, seed: int = 0, test: ImageSet | None = None) -> Splits:
    """Stratified train/validation split (or the split the folders give), with checks a user can act on.

    test: a separate test set; its class names must be among the training classes.
    """
    if not 0.0 < val_fraction < 1.0:
        raise LensError("The validation fraction must be between 0 and 1 (for example 0.2).")
    if len(ds.classes) < 2:
        only = f" (only '{ds.classes[0]}')" if ds.classes else ""
        raise LensError(f"A classifier needs at least 2 classes{only}. Add a folder (or a class) for each other class.")
    given = ds.split_given
    if given:
        train = ds.subset(i for i, s in enumerate(ds.subsets) if s == "train")
        val = ds.subset(i for i, s in enumerate(ds.subsets) if s == "val")
        for part, need, label in ((train, 2, "train"), (val, 1, "val")):
            for cls, n in part.counts().items():
                if n < need:
                    raise LensError(
                        f"Class '{cls}' has {n} image(s) in {label}/; it needs at least {need}. Add photos of '{cls}'."
                    )
    else:
        counts = ds.counts()
        for cls, n in counts.items():
            if n < MIN_IMAGES_PER_CLASS:
                raise LensError(
                    f"Class '{cls}' has only {n} image(s); every class needs at least {MIN_IMAGES_PER_CLASS} "
                    "(some to learn from, some to check on). Add photos of this class."
                )
        rng = np.random.default_rng(seed)
        pool = [i for i, s in enumerate(ds.subsets or [""] * len(ds)) if s != "test"]
        train_idx, val_idx = [], []
        for label in range(len(ds.classes)):
            members = [i for i in pool if ds.labels[i] == label]
            rng.shuffle(members)
            n_val = min(len(members) - 2, max(1, round(len(members) * val_fraction)))
            val_idx += members[:n_val]
            train_idx += members[n_val:]
        train, val = ds.subset(sorted(train_idx)), ds.subset(sorted(val_idx))
    if test is None and ds.subsets and "test" in ds.subsets:
        test = ds.subset(i for i, s in enumerate(ds.subsets) if s == "test")
    elif test is not None:
        test = align_classes(test, ds.classes)
    return Splits(ds.classes, train, val, test, given)


def align_classes(ds: ImageSet, classes: tuple[str, ...]) -> ImageSet:
    unknown = [c for c in ds.classes if c not in classes]
    if unknown:
        raise LensError(f"The test set has classes the model was not trained on: {', '.join(unknown)}. Training classes: {', '.join(classes)}.")
    index = {c: i for i, c in enumerate(classes)}
    labels = tuple(index[ds.classes[label]] for label in ds.labels)
    return ImageSet(classes, ds.images, labels, ds.names, (), ds.skipped)


