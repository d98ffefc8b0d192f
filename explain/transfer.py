"""Transfer learning: datasets from uploads, freezing strategies, heads, the training loop, export.

Three ways to reuse a pretrained network for a new task with little data:

1. ``classifier``: the pretrained network as it is; each of the user's classes is mapped onto
   one ImageNet class (by name, else by what the network predicts for that class's photos).
2. ``extract``: the whole backbone frozen as a feature extractor; only a new head is trained.
3. ``finetune``: the last N blocks unfrozen too, with a smaller learning rate than the head.

The trained network is an ordinary :class:`explain.backbones.Backbone` (source ``trained``), so
every page (feature maps, ideal images, attacks, Grad-CAM) can use it, and it exports to one
``weights_only`` file that :func:`explain.backbones.load_model` opens again.
"""

from __future__ import annotations

import copy
import io
import math
import os
import stat
import time
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explain.backbones import (
    REGISTRY,
    Backbone,
    Preprocess,
    build_architecture,
    get_spec,
    imagenet_categories,
    load_checkpoint,
    load_state_checked,
    register_file_loader,
)
from explain.errors import LensError
from explain.images import MAX_BYTES, decode_image, prepare, sample_image, to_tensor
from explain.limits import (
    MAX_DATASET_IMAGES,
    MAX_EPOCHS,
    MAX_STORED_SIDE,
    ZIP_MAX_ENTRIES,
    ZIP_MAX_RATIO,
    ZIP_MAX_TOTAL_BYTES,
)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
MIN_IMAGES_PER_CLASS = 5  # at least one for validation and a few to learn from
MAX_IMAGES = MAX_DATASET_IMAGES  # the caps live in explain/limits.py; these names stay importable from here
SUBSETS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
LARGE_PER_CLASS = 500  # from this many images per class, a dataset counts as "large"
FORMAT = "cnn-lens-model"
FORMAT_VERSION = 1

STRATEGIES: dict[str, str] = {
    "classifier": "Pretrained as classifier (no training)",
    "extract": "Feature extractor: frozen backbone, new head",
    "finetune": "Fine-tune the last blocks and a new head",
}
HEADS: dict[str, str] = {
    "linear": "Linear layer",
    "mlp": "Dense(64) + BatchNorm + Dropout + Dense",
}


# --- datasets ---------------------------------------------------------------------------------
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


def _is_ignored(parts: tuple[str, ...]) -> bool:
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
        if _is_ignored(parts):
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
    if len(rows) > MAX_IMAGES:
        raise LensError(f"{source} holds {len(rows)} images; the limit is {MAX_IMAGES}. Use fewer images per class.")
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
        if info.file_size > MAX_BYTES:
            skipped.append(f"{shown}: {info.file_size / 2**20:.0f} MB, over the {MAX_BYTES // 2**20} MB limit per image")
            continue
        if info.compress_size and info.file_size / info.compress_size > ZIP_MAX_RATIO:
            skipped.append(f"{shown}: compressed {info.file_size // max(1, info.compress_size)}:1, not a photo")
            continue
        entries.append((parts, _zip_reader(archive, info)))
    return _check_readable(_build(entries, skipped, f"'{name}'"), name)


def _zip_reader(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            with archive.open(info) as handle:
                # zipfile stops at the declared size, so a lying header cannot make this grow
                return handle.read(MAX_BYTES + 1)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
            raise LensError(f"damaged zip entry ({type(exc).__name__})") from None

    return read


def dataset_from_folder(path: str | os.PathLike) -> ImageSet:
    """Read a folder with one sub-folder per class (or train/ val/ [test/] folders holding class folders)."""
    root = Path(path)
    if not root.is_dir():
        raise LensError(f"'{path}' is not a folder. Give a folder with one sub-folder of images per class.")
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
    return _check_readable(_build(entries, skipped, f"'{path}'"), str(path))


def _read_limited(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_BYTES:
            raise LensError(f"{path.stat().st_size / 2**20:.0f} MB, over the {MAX_BYTES // 2**20} MB limit per image")
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
        hint = f" Skipped: {'; '.join(ds.skipped[:3])}." if ds.skipped else ""
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
    given = bool(ds.subsets) and "val" in ds.subsets
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
        test = _align_classes(test, ds.classes)
    return Splits(ds.classes, train, val, test, given)


def _align_classes(ds: ImageSet, classes: tuple[str, ...]) -> ImageSet:
    unknown = [c for c in ds.classes if c not in classes]
    if unknown:
        raise LensError(f"The test set has classes the model was not trained on: {', '.join(unknown)}. Training classes: {', '.join(classes)}.")
    index = {c: i for i, c in enumerate(classes)}
    labels = tuple(index[ds.classes[label]] for label in ds.labels)
    return ImageSet(classes, ds.images, labels, ds.names, (), ds.skipped)


# --- the advisor ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Advice:
    """Which strategy fits the dataset: the four scenarios (small/large × similar/different)."""

    scenario: str  # "small-similar" | "small-different" | "large-similar" | "large-different"
    strategy: str
    unfreeze: int
    augment: bool
    reason: str  # a fixed English sentence per scenario (translatable)
    per_class: int  # images per class (the smallest class)
    imagenet_classes: tuple[str, ...] = ()  # ImageNet classes the user's class names already are


ADVICE_TEXT = {
    "small-similar": "Few images, and they look like ImageNet photos: the pretrained features already describe them well. "
    "Freeze the whole backbone and train only a new head; fine-tuning would mostly overfit.",
    "small-different": "Few images that look unlike ImageNet photos: the last blocks' features are too specific to ImageNet. "
    "Fine-tune only the last one or two blocks with a small learning rate and augmentation, keeping the general early filters frozen.",
    "large-similar": "Many images that look like ImageNet photos: there is enough data to adapt the last blocks without overfitting. "
    "Fine-tune the last blocks; a frozen feature extractor is a fast baseline.",
    "large-different": "Many images that look unlike ImageNet photos: adapt most of the network. "
    "Fine-tune many blocks (the pretrained weights are still a better start than random ones).",
}


def advise(ds: ImageSet | Splits, similar: bool, base: str = "efficientnet_lite0") -> Advice:
    """Recommend a strategy from the dataset size and whether the photos resemble ImageNet (the user's answer)."""
    train = ds.train if isinstance(ds, Splits) else ds
    counts = train.counts()
    per_class = min(counts.values()) if counts else 0
    large = per_class >= LARGE_PER_CLASS
    scenario = f"{'large' if large else 'small'}-{'similar' if similar else 'different'}"
    blocks = len(anatomy_of(base).blocks) or 1
    strategy, unfreeze, augment = {
        "small-similar": ("extract", 1, False),
        "small-different": ("finetune", min(2, blocks), True),
        "large-similar": ("finetune", min(2, blocks), True),
        "large-different": ("finetune", max(1, blocks - 1), True),
    }[scenario]
    known = tuple(c for c in train.classes if _imagenet_match(c) is not None)
    return Advice(scenario, strategy, unfreeze, augment, ADVICE_TEXT[scenario], per_class, known)


def imagenet_rows_by_name(classes: Sequence[str]) -> list[int] | None:
    """One distinct ImageNet class per user class, matched by name; None unless every class has one."""
    rows = [_imagenet_match(c) for c in classes]
    if any(r is None for r in rows) or len(set(rows)) != len(rows):
        return None
    return [int(r) for r in rows]


def _is_imagenet_head(backbone: Backbone, head: nn.Linear) -> bool:
    return head.out_features == 1000 and list(backbone.categories) == list(imagenet_categories())


def _imagenet_match(name: str) -> int | None:
    """The ImageNet class with exactly this name (or its singular), else None."""
    cats = [c.lower() for c in imagenet_categories()]
    low = name.lower().strip().replace("_", " ")
    for candidate in (low, low.removesuffix("s"), low.removesuffix("es")):
        if candidate in cats:
            return cats.index(candidate)
    return None


# --- anatomy: where the blocks and the head of each architecture are -------------------------
@dataclass(frozen=True)
class Anatomy:
    """Module names in forward order: stem, blocks (each a run of modules), tail, flatten, post, head."""

    stem: tuple[str, ...]
    blocks: tuple[tuple[str, ...], ...]
    tail: tuple[str, ...]  # after the last block, before flattening (pooling, last conv)
    post: tuple[str, ...]  # after flattening, before the head (dense layers of VGG-style classifiers)
    head: str  # the final Linear layer, replaced by the new head

    @property
    def structured(self) -> bool:
        return bool(self.blocks)


def anatomy_of(base: str, model: nn.Module | None = None) -> Anatomy:
    """Where the blocks and the classifier are in a registry architecture."""
    spec = get_spec(base)
    if model is None:
        with torch.device("meta"):
            model = build_architecture(base)
    if spec.family == "efficientnet-lite":
        blocks = tuple((f"blocks.{i}",) for i in range(len(model.blocks)))
        return Anatomy(("conv_stem", "bn1"), blocks, ("conv_head", "bn2", "global_pool"), (), "classifier")
    if base.startswith("resnet"):
        return Anatomy(("conv1", "bn1", "relu", "maxpool"), tuple((f"layer{i}",) for i in range(1, 5)), ("avgpool",), (), "fc")
    features = getattr(model, "features", None)
    classifier = getattr(model, "classifier", None)
    if isinstance(features, nn.Sequential) and isinstance(classifier, nn.Sequential):
        names = [f"features.{n}" for n, _ in features.named_children()]
        if any(isinstance(m, nn.MaxPool2d) for m in features):
            blocks, run = [], []
            for name, module in zip(names, features):
                run.append(name)
                if isinstance(module, nn.MaxPool2d):
                    blocks.append(tuple(run))
                    run = []
            if run:
                blocks.append(tuple(run))
        else:
            blocks = [(n,) for n in names]
        cls_names = [f"classifier.{n}" for n, _ in classifier.named_children()]
        tail = ("avgpool",) if hasattr(model, "avgpool") else ()
        return Anatomy((), tuple(blocks), tail, tuple(cls_names[:-1]), cls_names[-1])
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise LensError(f"Cannot find the classifier layer of '{base}'.")
    return Anatomy((), (), (), (), linears[-1])


def _run(model: nn.Module, names: Iterable[str], x: torch.Tensor) -> torch.Tensor:
    for name in names:
        x = model.get_submodule(name)(x)
    return x


def _set_submodule(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, child = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


class _Captured(Exception):
    def __init__(self, value: torch.Tensor):
        super().__init__("captured")
        self.value = value


def _features_by_capture(model: nn.Module, head: str, x: torch.Tensor) -> torch.Tensor:
    """The input of the head layer, for architectures without a known block structure."""

    def grab(_module, inputs):
        raise _Captured(inputs[0])

    handle = model.get_submodule(head).register_forward_pre_hook(grab)
    try:
        model(x)
    except _Captured as captured:
        return captured.value
    finally:
        handle.remove()
    raise LensError("The network never reached its classifier layer.")


# --- heads ------------------------------------------------------------------------------------
def build_head(spec: dict) -> nn.Module:
    """A new classifier head from a plain spec: {"kind", "in_features", "num_classes", "hidden", "dropout"}."""
    kind = spec.get("kind")
    n_in, n_out = int(spec["in_features"]), int(spec["num_classes"])
    if kind == "linear":
        return nn.Linear(n_in, n_out)
    if kind == "mlp":
        hidden = int(spec.get("hidden", 64))
        return nn.Sequential(
            nn.Linear(n_in, hidden),
            nn.ReLU(),
            nn.BatchNorm1d(hidden),
            nn.Dropout(float(spec.get("dropout", 0.5))),
            nn.Linear(hidden, n_out),
        )
    raise LensError(f"Unknown head '{kind}'. Choose one of: {', '.join(HEADS)}.")


# --- training -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; defaults are sensible for a few hundred photos."""

    strategy: str = "extract"
    head: str = "linear"
    unfreeze: int = 1  # blocks unfrozen by "finetune", counted from the last
    epochs: int = 10
    head_epochs: int = 5  # "finetune" first trains the new head alone for this many epochs (frozen features)
    batch_size: int = 32
    lr: float = 1e-3  # the head's learning rate (Adam)
    backbone_lr: float | None = None  # the unfrozen blocks' learning rate; default lr / 10
    augment: bool = False
    weight_decay: float = 1e-4
    hidden: int = 64
    dropout: float = 0.5
    seed: int = 0
    # a linear head starts from the network's own ImageNet weights when every class name is an ImageNet
    # class ("ants" -> ant): hymenoptera extract 96.7 % val instead of 94.1 % from a random head
    imagenet_init: bool = True

    def checked(self) -> TrainConfig:
        if self.strategy not in STRATEGIES:
            raise LensError(f"Unknown strategy '{self.strategy}'. Choose one of: {', '.join(STRATEGIES)}.")
        if self.head not in HEADS:
            raise LensError(f"Unknown head '{self.head}'. Choose one of: {', '.join(HEADS)}.")
        if self.epochs < 1 and self.strategy != "classifier":
            raise LensError("Train for at least 1 epoch.")
        if self.epochs > MAX_EPOCHS or self.head_epochs > MAX_EPOCHS:
            raise LensError(f"Train for at most {MAX_EPOCHS} epochs (the limit on this server).")
        if self.head_epochs < 0:
            raise LensError("Head-only epochs cannot be negative.")
        if self.batch_size < 2:
            raise LensError("The batch size must be 2 or more.")
        if not (self.lr > 0 and (self.backbone_lr is None or self.backbone_lr > 0)):
            raise LensError("Learning rates must be positive.")
        return self


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    seconds: float  # since the start of the run
    phase: str = "head"  # "head": only the new head learned; "blocks": the unfrozen blocks too


@dataclass(frozen=True)
class TrainProgress:
    """What the callback receives: phase "features" (caching), "train" (one step) or "epoch" (one epoch done)."""

    phase: str
    step: int
    total: int
    epoch: int
    epochs: int
    loss: float | None
    history: tuple[EpochStats, ...]


@dataclass(frozen=True)
class Evaluation:
    """Accuracy of a model on one labelled set."""

    accuracy: float
    loss: float
    confusion: np.ndarray  # (C, C): rows true class, columns predicted class
    per_class: dict[str, float]  # accuracy of each class (nan when the set has none of it)
    predictions: tuple[int, ...]
    labels: tuple[int, ...]


@dataclass(frozen=True)
class TrainResult:
    """A finished (or stopped) run: the model as a Backbone and how it did."""

    backbone: Backbone
    config: TrainConfig
    history: tuple[EpochStats, ...]
    val: Evaluation
    seconds: float
    stopped: bool
    trainable_params: int
    frozen_params: int
    # user class -> ImageNet class: the one used (strategy "classifier") or the head row started from (imagenet_init)
    class_map: dict[str, str] = field(default_factory=dict)


def _evaluation(logits: torch.Tensor, labels: torch.Tensor, classes: tuple[str, ...]) -> Evaluation:
    n = len(classes)
    loss = float(F.cross_entropy(logits, labels)) if len(labels) else float("nan")
    pred = logits.argmax(1)
    confusion = np.zeros((n, n), dtype=np.int64)
    for t_, p_ in zip(labels.tolist(), pred.tolist()):
        confusion[t_, p_] += 1
    totals = confusion.sum(1)
    per_class = {c: (float(confusion[i, i] / totals[i]) if totals[i] else float("nan")) for i, c in enumerate(classes)}
    acc = float((pred == labels).float().mean()) if len(labels) else float("nan")
    return Evaluation(acc, loss, confusion, per_class, tuple(pred.tolist()), tuple(labels.tolist()))


def plan_parameters(backbone: Backbone, num_classes: int, config: TrainConfig) -> tuple[int, int]:
    """(trainable, frozen) parameter counts a run would have, without copying the network."""
    config = config.checked()
    base = backbone.base or backbone.name
    anatomy = anatomy_of(base, backbone.model)
    original = backbone.model.get_submodule(anatomy.head)
    head_spec = {"kind": "linear" if config.strategy == "classifier" else config.head, "in_features": original.in_features,
                 "num_classes": num_classes, "hidden": config.hidden, "dropout": config.dropout}
    with torch.device("meta"):
        head = sum(p.numel() for p in build_head(head_spec).parameters())
    body = sum(p.numel() for p in backbone.model.parameters()) - sum(p.numel() for p in original.parameters())
    if config.strategy == "classifier":
        return 0, body + head
    trainable = head
    if config.strategy == "finetune":
        first = len(anatomy.blocks) - config.unfreeze
        if not anatomy.structured or not 0 <= first < len(anatomy.blocks):
            raise LensError(f"'{base}' has {len(anatomy.blocks)} blocks: unfreeze between 1 and {len(anatomy.blocks)}.")
        names = [n for block in anatomy.blocks[first:] for n in block] + list(anatomy.tail) + list(anatomy.post)
        trainable += sum(p.numel() for n in names for p in backbone.model.get_submodule(n).parameters())
    return trainable, body + head - trainable


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, frozen) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters()) - trainable


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


class Trainer:
    """One transfer-learning run. Keep it to stop early and still get a result (``result()``).

    Builds a private copy of the backbone (the shared one is never changed), freezes it according
    to the strategy, and caches the output of the frozen part when nothing random happens before it.
    """

    def __init__(self, backbone: Backbone, splits: Splits, config: TrainConfig | None = None):
        self.config = (config or TrainConfig()).checked()
        if backbone.source == "trained":
            raise LensError("Start from a pretrained registry backbone, not from a model you trained.")
        self.base = backbone.base or backbone.name
        self.preprocess = backbone.preprocess
        self.device = backbone.device
        self.micro_batch = backbone.micro_batch
        self.splits = splits
        self.classes = splits.classes
        self.model = copy.deepcopy(backbone.model).eval()
        self.anatomy = anatomy_of(self.base, self.model)
        original = self.model.get_submodule(self.anatomy.head)
        if not isinstance(original, nn.Linear):
            raise LensError(f"The classifier of '{self.base}' is not a linear layer; it cannot get a new head.")
        self.in_features = original.in_features
        cfg = self.config
        n_blocks = len(self.anatomy.blocks)
        if cfg.strategy == "finetune":
            if not self.anatomy.structured:
                raise LensError(f"Fine-tuning blocks of '{self.base}' is not supported here; use the feature extractor.")
            if not 1 <= cfg.unfreeze <= n_blocks:
                raise LensError(f"'{self.base}' has {n_blocks} blocks: unfreeze between 1 and {n_blocks}.")
        self.first_trainable = n_blocks - cfg.unfreeze if cfg.strategy == "finetune" else n_blocks
        self.class_map: dict[str, str] = {}  # user class -> ImageNet class (classifier, or a head started from ImageNet)
        torch.manual_seed(cfg.seed)  # the new head's initial weights
        if cfg.strategy == "classifier":
            self.head_spec = {"kind": "linear", "in_features": self.in_features, "num_classes": len(self.classes)}
            self.head = nn.Linear(self.in_features, len(self.classes))
            self._original_head = original
        else:
            self.head_spec = {
                "kind": cfg.head,
                "in_features": self.in_features,
                "num_classes": len(self.classes),
                "hidden": cfg.hidden,
                "dropout": cfg.dropout,
            }
            self.head = build_head(self.head_spec)
            rows = imagenet_rows_by_name(self.classes) if cfg.imagenet_init and cfg.head == "linear" else None
            if rows is not None and _is_imagenet_head(backbone, original):
                with torch.no_grad():
                    self.head.weight.copy_(original.weight[rows])
                    self.head.bias.copy_(original.bias[rows])
                cats = imagenet_categories()
                self.class_map = {cls: cats[row] for cls, row in zip(self.classes, rows)}
        _set_submodule(self.model, self.anatomy.head, self.head)
        # channels-last convolutions run about 1.7x faster on CPU; the exported copy goes back to the usual layout
        self.model.to(self.device, memory_format=torch.channels_last)
        for p in self.model.parameters():
            p.requires_grad_(False)
        if cfg.strategy != "classifier":
            for module in self._trainable_modules():
                for p in module.parameters():
                    p.requires_grad_(True)
        self.trainable_params, self.frozen_params = count_parameters(self.model)
        self.history: list[EpochStats] = []
        self.stopped = False
        self.seconds = 0.0
        self._cache: dict[str, torch.Tensor] = {}
        self._val_eval: Evaluation | None = None

    # the network cut in two: frozen part (cached when possible) and trainable part
    def _trainable_modules(self) -> list[nn.Module]:
        a = self.anatomy
        names = [n for block in a.blocks[self.first_trainable :] for n in block]
        if self.first_trainable < len(a.blocks):
            names += list(a.tail) + list(a.post)
        return [self.model.get_submodule(n) for n in names] + [self.head]

    def _frozen_forward(self, x01: torch.Tensor) -> torch.Tensor:
        x = self._normalize(x01).contiguous(memory_format=torch.channels_last)
        a = self.anatomy
        if not a.structured:
            return _features_by_capture(self.model, a.head, x)
        h = _run(self.model, a.stem, x)
        for block in a.blocks[: self.first_trainable]:
            h = _run(self.model, block, h)
        if self.first_trainable == len(a.blocks):
            h = _run(self.model, a.post, _run(self.model, a.tail, h).flatten(1))
        return h

    def _trainable_forward(self, h: torch.Tensor) -> torch.Tensor:
        a = self.anatomy
        if self.first_trainable < len(a.blocks):
            for block in a.blocks[self.first_trainable :]:
                h = _run(self.model, block, h)
            h = _run(self.model, a.post, _run(self.model, a.tail, h).flatten(1))
        return self.head(h)

    def _normalize(self, x01: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.preprocess.mean, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.preprocess.std, device=self.device).view(1, 3, 1, 1)
        return (x01.to(self.device) - mean) / std

    def _batches(self, images: tuple[np.ndarray, ...]) -> Iterator[torch.Tensor]:
        size = self.micro_batch
        for start in range(0, len(images), size):
            chunk = images[start : start + size]
            yield torch.cat([prepare(img, self.preprocess).tensor for img in chunk])

    @torch.no_grad()  # not inference_mode: cached outputs feed layers that are trained
    def _frozen_outputs(self, images, phase_total: int, done: int, callback) -> tuple[torch.Tensor, int]:
        outs = []
        for batch in self._batches(images):
            outs.append(self._frozen_forward(batch).clone())
            done += 1
            if callback:
                callback(done, TrainProgress("features", done, phase_total, 0, self.planned_epochs, None, ()))
        return torch.cat(outs), done

    def prepare_features(self, callback: Callable[[int, TrainProgress], None] | None = None) -> None:
        """Run the frozen part once over the images that need no augmentation (done by train() if skipped)."""
        if "val" in self._cache:
            return
        sets = [("val", self.splits.val.images)]
        if not self.config.augment or self.config.strategy == "classifier":
            sets.insert(0, ("train", self.splits.train.images))
        total = sum(math.ceil(len(imgs) / self.micro_batch) for _, imgs in sets)
        done = 0
        for key, images in sets:
            self._cache[key], done = self._frozen_outputs(images, total, done, callback)

    def train(
        self,
        callback: Callable[[int, TrainProgress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> TrainResult:
        """Train the head (and unfrozen blocks); callback(step, progress) after each step and epoch."""
        start = time.perf_counter()
        cfg = self.config
        self.prepare_features(callback)
        if cfg.strategy == "classifier":
            self._fit_class_map(torch.tensor(self.splits.train.labels, device=self.device))
            self.seconds += time.perf_counter() - start
            return self.result()
        self._gen = torch.Generator().manual_seed(cfg.seed)
        self._rng = np.random.default_rng(cfg.seed)
        self._step = 0
        self._total = math.ceil(len(self.splits.train) / cfg.batch_size) * self.planned_epochs
        if self.warmup_epochs and not self.history:
            # the Keras recipe: first train the new head on frozen features, so that the large errors of a
            # random head do not wreck the pretrained blocks once they are unfrozen
            train_h = self._cache.get("train")
            if train_h is None:
                train_h, _ = self._frozen_outputs(self.splits.train.images, 0, 0, None)
            feats = {"train": self._rest(train_h), "val": self._rest(self._cache["val"])}
            optimizer = torch.optim.AdamW(self.head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            self._epochs("head", self.warmup_epochs, self.head, feats, optimizer, callback, should_stop, start)
        if not self.stopped:
            head_params = list(self.head.parameters())
            ids = {id(p) for p in head_params}
            body_params = [p for p in self.model.parameters() if p.requires_grad and id(p) not in ids]
            groups = [{"params": head_params, "lr": cfg.lr}]
            if body_params:
                groups.append({"params": body_params, "lr": cfg.backbone_lr or cfg.lr / 10})
            optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
            phase = "blocks" if body_params else "head"
            self._epochs(phase, cfg.epochs, self._trainable_forward, self._cache, optimizer, callback, should_stop, start)
        self.seconds += time.perf_counter() - start
        return self.result()

    @property
    def warmup_epochs(self) -> int:
        return self.config.head_epochs if self.config.strategy == "finetune" else 0

    @property
    def planned_epochs(self) -> int:
        return 0 if self.config.strategy == "classifier" else self.warmup_epochs + self.config.epochs

    @torch.no_grad()
    def _rest(self, h: torch.Tensor) -> torch.Tensor:
        """Pooled features from cached frozen outputs: the unfrozen blocks run once, as they are."""
        self.model.eval()
        a = self.anatomy
        out = []
        for chunk in h.split(64):
            for block in a.blocks[self.first_trainable :]:
                chunk = _run(self.model, block, chunk)
            out.append(_run(self.model, a.post, _run(self.model, a.tail, chunk).flatten(1)))
        return torch.cat(out)

    def _epochs(self, phase, count, forward, inputs, optimizer, callback, should_stop, start) -> None:
        """`count` epochs of `forward` on inputs["train"] (or augmented crops when absent), validated on inputs["val"]."""
        cfg = self.config
        labels = torch.tensor(self.splits.train.labels, device=self.device)
        val_labels = torch.tensor(self.splits.val.labels)
        n = len(self.splits.train)
        for _ in range(count):
            epoch = len(self.history) + 1
            # only the new head runs in training mode: BatchNorm layers of the backbone keep their
            # ImageNet statistics (small batches would wreck them) and the blocks' dropout stays off
            self.model.eval()
            self.head.train()
            order = torch.randperm(n, generator=self._gen)
            seen, loss_sum, correct = 0, 0.0, 0
            for first in range(0, n, cfg.batch_size):
                idx = order[first : first + cfg.batch_size]
                if len(idx) < 2:  # BatchNorm cannot train on one sample
                    continue
                if "train" in inputs:
                    h = inputs["train"][idx.to(self.device)]
                else:
                    crops = [random_resized_crop(self.splits.train.images[i], self.preprocess.input_size, self._rng) for i in idx.tolist()]
                    with torch.no_grad():
                        crops01 = torch.cat([to_tensor(c) for c in crops])
                        h = torch.cat([self._frozen_forward(part) for part in crops01.split(self.micro_batch)])
                y = labels[idx.to(self.device)]
                logits = forward(h)
                loss = F.cross_entropy(logits, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                self._step += 1
                seen += len(idx)
                loss_sum += float(loss.detach()) * len(idx)
                correct += int((logits.argmax(1) == y).sum())
                if callback:
                    callback(self._step, TrainProgress("train", self._step, self._total, epoch, self.planned_epochs, float(loss.detach()), tuple(self.history)))
                if should_stop and should_stop():
                    self.stopped = True
                    break
            self.model.eval()
            with torch.no_grad():
                logits = torch.cat([forward(h) for h in inputs["val"].split(64)])
            val = self._val_eval = _evaluation(logits.float().cpu(), val_labels, self.classes)
            self.history.append(
                EpochStats(epoch, loss_sum / max(1, seen), correct / max(1, seen), val.loss, val.accuracy,
                           self.seconds + time.perf_counter() - start, phase)
            )
            if callback:
                callback(self._step, TrainProgress("epoch", self._step, self._total, epoch, self.planned_epochs, self.history[-1].train_loss, tuple(self.history)))
            if self.stopped:
                return

    @torch.no_grad()
    def _evaluate_cached(self, val_labels: torch.Tensor) -> Evaluation:
        self.model.eval()
        logits = torch.cat([self._trainable_forward(h) for h in self._cache["val"].split(64)])
        self._val_eval = _evaluation(logits.float().cpu(), val_labels.cpu(), self.classes)
        return self._val_eval

    @torch.no_grad()
    def _fit_class_map(self, train_labels: torch.Tensor) -> None:
        """Strategy "classifier": pick one ImageNet class per user class, by name or else by the training photos."""
        cats = imagenet_categories()
        original = self._original_head
        probs = original(self._cache["train"]).softmax(1)
        chosen: dict[int, int] = {}
        for label, cls in enumerate(self.classes):
            match = _imagenet_match(cls)
            if match is not None and match not in chosen.values():
                chosen[label] = match
        # the rest: the ImageNet class the network most believes in for that class's photos
        pending = [label for label in range(len(self.classes)) if label not in chosen]
        mean = {label: probs[train_labels == label].mean(0) for label in pending}
        while pending:
            label, best = max(
                ((lab, mean[lab].clone()) for lab in pending), key=lambda item: float(item[1].max())
            )
            for used in chosen.values():
                best[used] = -1
            chosen[label] = int(best.argmax())
            pending.remove(label)
        rows = [chosen[label] for label in range(len(self.classes))]
        self.head.weight.copy_(original.weight[rows])
        self.head.bias.copy_(original.bias[rows])
        self.class_map = {self.classes[label]: cats[rows[label]] for label in range(len(self.classes))}
        self.head_spec = {**self.head_spec, "imagenet_rows": rows}
        self._evaluate_cached(torch.tensor(self.splits.val.labels, device=self.device))

    def result(self) -> TrainResult:
        """The model so far as a Backbone, with its validation results (works after a stop or an interruption)."""
        if self.config.strategy == "classifier" and not self.class_map:
            return self.train()
        self.model.eval()
        self.prepare_features()
        # evaluated again: an interruption between epochs leaves weights newer than the last evaluation
        self._evaluate_cached(torch.tensor(self.splits.val.labels, device=self.device))
        stopped = self.stopped or len(self.history) < self.planned_epochs
        backbone = _as_backbone(
            copy.deepcopy(self.model).to(memory_format=torch.contiguous_format), self.base, self.classes, self.preprocess, self.device,
            self.head_spec, self.config.strategy,
        )
        return TrainResult(
            backbone, self.config, tuple(self.history), self._val_eval, self.seconds, stopped,
            self.trainable_params, self.frozen_params, dict(self.class_map),
        )


def _as_backbone(
    model: nn.Module, base: str, classes: tuple[str, ...], preprocess: Preprocess, device: torch.device,
    head_spec: dict, strategy: str, name: str = "",
) -> Backbone:
    from explain.backbones import _prepare_for_viewing

    model = _prepare_for_viewing(model)
    for p in model.parameters():  # like registry backbones, so input gradients (attacks, Grad-CAM) flow as usual
        p.requires_grad_(True)
    return Backbone(
        name=name or f"my model ({base}, {strategy})",
        model=model,
        categories=list(classes),
        preprocess=preprocess,
        device=device,
        source="trained",
        base=base,
        cam_layer=REGISTRY[base].cam_layer if base in REGISTRY else "",
        extra={"head": dict(head_spec), "strategy": strategy},
    )


def train_model(
    backbone: Backbone,
    splits: Splits,
    config: TrainConfig | None = None,
    callback: Callable[[int, TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train a new head (and maybe the last blocks) of `backbone` on `splits`; see Trainer."""
    return Trainer(backbone, splits, config).train(callback, should_stop)


@torch.no_grad()
def evaluate(backbone: Backbone, ds: ImageSet, batch_size: int | None = None) -> Evaluation:
    """Accuracy of a backbone on a labelled set, through the same preprocessing as Classify."""
    if list(ds.classes) != list(backbone.categories):
        ds = _align_classes(ds, tuple(backbone.categories))
    backbone.model.eval()
    batch_size = batch_size or backbone.micro_batch
    logits = []
    for start in range(0, len(ds), batch_size):
        batch = torch.cat([prepare(img, backbone.preprocess).tensor for img in ds.images[start : start + batch_size]])
        logits.append(backbone.logits(batch).float().cpu())
    out = torch.cat(logits) if logits else torch.zeros(0, len(ds.classes))
    return _evaluation(out, torch.tensor(ds.labels, dtype=torch.long), tuple(backbone.categories))


# --- export / import ----------------------------------------------------------------------------
def export_model(backbone: Backbone) -> bytes:
    """One file with everything needed to rebuild a trained model: plain types and tensors only."""
    if backbone.source != "trained" or "head" not in backbone.extra:
        raise LensError("Only a model trained here (my model) can be exported.")
    pp = backbone.preprocess
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "name": backbone.name,
        "base": backbone.base,
        "classes": list(backbone.categories),
        "head": dict(backbone.extra["head"]),
        "strategy": backbone.extra.get("strategy", ""),
        "preprocess": {
            "input_size": pp.input_size,
            "resize_size": pp.resize_size,
            "mean": list(pp.mean),
            "std": list(pp.std),
            "interpolation": pp.interpolation,
        },
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in backbone.model.state_dict().items()},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def save_model(backbone: Backbone, path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(export_model(backbone))
    return path


def import_model(source: bytes | str | os.PathLike, device: torch.device | str | None = None, name: str = "") -> Backbone:
    """Rebuild a trained model from an exported file (or its bytes); raises LensError when it is not one."""
    payload = _read_payload(source)
    if payload is None:
        raise LensError("This file is not a CNN Lens model export (make one on the Transfer learning page or with `finetune`).")
    return _payload_backbone(payload, device, name)


def _read_payload(source: bytes | str | os.PathLike) -> dict | None:
    if not isinstance(source, bytes) and not Path(source).is_file():
        raise LensError(f"Could not open '{Path(source).name}': no such file.")
    try:
        return _as_payload(load_checkpoint(source))
    except LensError:  # pickles with code, truncated files, anything else: not our export
        return None


def _as_payload(obj: object) -> dict | None:
    return obj if isinstance(obj, dict) and obj.get("format") == FORMAT else None


def _payload_backbone(payload: dict, device: torch.device | str | None, name: str = "") -> Backbone:
    from explain.backbones import default_device

    if int(payload.get("version", 0)) > FORMAT_VERSION:
        raise LensError("This model file was made by a newer CNN Lens. Update the app to open it.")
    try:
        base, classes, head_spec = str(payload["base"]), [str(c) for c in payload["classes"]], dict(payload["head"])
        pp = payload["preprocess"]
        preprocess = Preprocess(
            int(pp["input_size"]), int(pp["resize_size"]), tuple(pp["mean"]), tuple(pp["std"]), str(pp.get("interpolation", "linear"))
        )
        state = payload["state_dict"]
    except (KeyError, TypeError, ValueError):
        raise LensError("This CNN Lens model file is incomplete (base, classes, head, preprocess or weights missing).") from None
    if base not in REGISTRY:
        raise LensError(f"This model was trained from '{base}', which this version of CNN Lens does not know.")
    if len(classes) != int(head_spec.get("num_classes", -1)):
        raise LensError("This CNN Lens model file is inconsistent: the head and the class list disagree.")
    device = torch.device(device) if device is not None else default_device()
    model = build_architecture(base)
    _set_submodule(model, anatomy_of(base, model).head, build_head(head_spec))
    load_state_checked(model, state, "the model file")
    return _as_backbone(
        model.to(device), base, tuple(classes), preprocess, device, head_spec, str(payload.get("strategy", "")),
        name or str(payload.get("name", "")),
    )


def _file_loader(checkpoint: object, device: torch.device | str | None) -> Backbone | None:
    payload = _as_payload(checkpoint)
    return None if payload is None else _payload_backbone(payload, device)


register_file_loader("cnnlens", _file_loader)
