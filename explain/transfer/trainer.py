"""Training a new head (and maybe the last blocks) of a backbone on a small dataset, live and stoppable."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explain.errors import LensError
from explain.images import normalize, prepare, to_tensor
from explain.jobs import Progress, ProgressLog, StopSignal, stop_requested
from explain.limits import MAX_EPOCHS, MAX_STORED_SIDE
from explain.models import (
    HEADS,
    Backbone,
    anatomy_of,
    build_head,
    imagenet_categories,
    run_modules,
    set_submodule,
    trained_backbone,
)
from explain.models.anatomy import features_by_capture
from explain.transfer.advisor import STRATEGIES, imagenet_match, imagenet_rows_by_name, is_imagenet_head
from explain.transfer.augment import random_resized_crop
from explain.transfer.datasets import Splits
from explain.transfer.evaluation import Evaluation, evaluation

SCHEDULES = ("constant", "cosine")


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
    # "cosine": the learning rates of the main phase fall to 0 along half a cosine (few epochs end in a settled model)
    schedule: str = "constant"
    # the side the network sees the photos at (the whole photo, no centre crop); None: the backbone's own preprocessing
    input_size: int | None = None

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
        if self.schedule not in SCHEDULES:
            raise LensError(f"Unknown schedule '{self.schedule}'. Choose one of: {', '.join(SCHEDULES)}.")
        if self.input_size is not None and not 32 <= self.input_size <= MAX_STORED_SIDE:
            raise LensError(f"The input size must be between 32 and {MAX_STORED_SIDE} pixels.")
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


EPOCH_METRICS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc")


def epoch_history(history: Sequence[EpochStats]) -> dict[str, list[float]]:
    """Epoch stats as the metric history a long job reports (metric -> one value per epoch), for one kind of chart."""
    return {name: [float(getattr(h, name)) for h in history] for name in EPOCH_METRICS}


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
        if self.config.input_size is not None:
            self.preprocess = replace(self.preprocess, input_size=self.config.input_size, resize_size=self.config.input_size)
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
            if rows is not None and is_imagenet_head(backbone, original):
                with torch.no_grad():
                    self.head.weight.copy_(original.weight[rows])
                    self.head.bias.copy_(original.bias[rows])
                cats = imagenet_categories()
                self.class_map = {cls: cats[row] for cls, row in zip(self.classes, rows)}
        set_submodule(self.model, self.anatomy.head, self.head)
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
        x = normalize(x01.to(self.device), self.preprocess).contiguous(memory_format=torch.channels_last)
        a = self.anatomy
        if not a.structured:
            return features_by_capture(self.model, a.head, x)
        h = run_modules(self.model, a.stem, x)
        for block in a.blocks[: self.first_trainable]:
            h = run_modules(self.model, block, h)
        if self.first_trainable == len(a.blocks):
            h = run_modules(self.model, a.post, run_modules(self.model, a.tail, h).flatten(1))
        return h

    def _trainable_forward(self, h: torch.Tensor) -> torch.Tensor:
        a = self.anatomy
        if self.first_trainable < len(a.blocks):
            for block in a.blocks[self.first_trainable :]:
                h = run_modules(self.model, block, h)
            h = run_modules(self.model, a.post, run_modules(self.model, a.tail, h).flatten(1))
        return self.head(h)

    def _batches(self, images: tuple[np.ndarray, ...]) -> Iterator[torch.Tensor]:
        size = self.micro_batch
        for start in range(0, len(images), size):
            chunk = images[start : start + size]
            yield torch.cat([prepare(img, self.preprocess).tensor for img in chunk])

    @torch.no_grad()  # not inference_mode: cached outputs feed layers that are trained
    def _frozen_outputs(self, images, phase_total: int, done: int, log: ProgressLog | None) -> tuple[torch.Tensor, int]:
        outs = []
        for batch in self._batches(images):
            outs.append(self._frozen_forward(batch).clone())
            done += 1
            if log is not None:
                log.report(done, "features", {}, total=phase_total, keep=False)
        return torch.cat(outs), done

    def prepare_features(self, callback: Callable[[Progress], None] | None = None) -> None:
        """Run the frozen part once over the images that need no augmentation (done by train() if skipped).

        callback(progress) after each batch, phase "features"."""
        self._prepare_features(ProgressLog(0, callback))

    def _prepare_features(self, log: ProgressLog) -> None:
        if "val" in self._cache:
            return
        sets = [("val", self.splits.val.images)]
        if not self.config.augment or self.config.strategy == "classifier":
            sets.insert(0, ("train", self.splits.train.images))
        total = sum(math.ceil(len(imgs) / self.micro_batch) for _, imgs in sets)
        done = 0
        for key, images in sets:
            self._cache[key], done = self._frozen_outputs(images, total, done, log)

    def train(
        self,
        callback: Callable[[Progress], None] | None = None,
        should_stop: StopSignal = None,
    ) -> TrainResult:
        """Train the head (and unfrozen blocks): a long job (explain.jobs).

        callback(progress) with phase "features" (the frozen part runs once over the photos), "train" after
        each step (metrics loss, epoch, epochs) and "epoch" after each epoch (metrics epoch, train_loss,
        train_acc, val_loss, val_acc: the history holds these, one value per epoch). should_stop ends the run
        after the current step; the result then says stopped and holds the model trained so far.
        """
        start = time.perf_counter()
        cfg = self.config
        log = ProgressLog(0, callback)
        self._prepare_features(log)
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
            self._epochs("head", self.warmup_epochs, self.head, feats, optimizer, log, should_stop, start)
        if not self.stopped:
            head_params = list(self.head.parameters())
            ids = {id(p) for p in head_params}
            body_params = [p for p in self.model.parameters() if p.requires_grad and id(p) not in ids]
            groups = [{"params": head_params, "lr": cfg.lr}]
            if body_params:
                groups.append({"params": body_params, "lr": cfg.backbone_lr or cfg.lr / 10})
            optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
            phase = "blocks" if body_params else "head"
            scheduler = None
            if cfg.schedule == "cosine":
                steps = max(1, cfg.epochs * math.ceil(len(self.splits.train) / cfg.batch_size))
                scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 0.5 * (1 + math.cos(math.pi * min(i, steps) / steps)))
            self._epochs(phase, cfg.epochs, self._trainable_forward, self._cache, optimizer, log, should_stop, start, scheduler)
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
                chunk = run_modules(self.model, block, chunk)
            out.append(run_modules(self.model, a.post, run_modules(self.model, a.tail, chunk).flatten(1)))
        return torch.cat(out)

    def _epochs(self, phase, count, forward, inputs, optimizer, log: ProgressLog, should_stop: StopSignal, start, scheduler=None) -> None:
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
                if scheduler is not None:
                    scheduler.step()
                self._step += 1
                seen += len(idx)
                loss_sum += float(loss.detach()) * len(idx)
                correct += int((logits.argmax(1) == y).sum())
                log.report(self._step, "train", {"loss": float(loss.detach()), "epoch": epoch, "epochs": self.planned_epochs},
                           total=self._total, keep=False)
                if stop_requested(should_stop):
                    self.stopped = True
                    break
            self.model.eval()
            with torch.no_grad():
                logits = torch.cat([forward(h) for h in inputs["val"].split(64)])
            val = self._val_eval = evaluation(logits.float().cpu(), val_labels, self.classes)
            self.history.append(
                EpochStats(epoch, loss_sum / max(1, seen), correct / max(1, seen), val.loss, val.accuracy,
                           self.seconds + time.perf_counter() - start, phase)
            )
            last = self.history[-1]
            log.report(self._step, "epoch", {name: float(getattr(last, name)) for name in EPOCH_METRICS}, total=self._total)
            if self.stopped:
                return

    @torch.no_grad()
    def _evaluate_cached(self, val_labels: torch.Tensor) -> Evaluation:
        self.model.eval()
        logits = torch.cat([self._trainable_forward(h) for h in self._cache["val"].split(64)])
        self._val_eval = evaluation(logits.float().cpu(), val_labels.cpu(), self.classes)
        return self._val_eval

    @torch.no_grad()
    def _fit_class_map(self, train_labels: torch.Tensor) -> None:
        """Strategy "classifier": pick one ImageNet class per user class, by name or else by the training photos."""
        cats = imagenet_categories()
        original = self._original_head
        probs = original(self._cache["train"]).softmax(1)
        chosen: dict[int, int] = {}
        for label, cls in enumerate(self.classes):
            match = imagenet_match(cls)
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
        backbone = trained_backbone(
            copy.deepcopy(self.model).to(memory_format=torch.contiguous_format), self.base, self.classes, self.preprocess, self.device,
            self.head_spec, self.config.strategy,
        )
        # a run ended by a click mid-way never reached the end of train(): its last epoch knows the time so far
        seconds = max(self.seconds, self.history[-1].seconds if self.history else 0.0)
        return TrainResult(
            backbone, self.config, tuple(self.history), self._val_eval, seconds, stopped,
            self.trainable_params, self.frozen_params, dict(self.class_map),
        )


def train_model(
    backbone: Backbone,
    splits: Splits,
    config: TrainConfig | None = None,
    callback: Callable[[Progress], None] | None = None,
    should_stop: StopSignal = None,
) -> TrainResult:
    """Train a new head (and maybe the last blocks) of `backbone` on `splits`; see Trainer."""
    return Trainer(backbone, splits, config).train(callback, should_stop)
