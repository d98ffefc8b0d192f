"""The verb that trains: finetune (transfer learning on a folder of class folders)."""

from __future__ import annotations

import argparse

from explain.cli import common
from explain.cli.common import add_device
from explain.models import DEFAULT_BACKBONE, HEADS
from explain.transfer import AUTO, STRATEGIES, TrainConfig

DEFAULTS = TrainConfig()

# --- finetune -----------------------------------------------------------------------------
def args_finetune(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", metavar="DATA_DIR", help="folder with one sub-folder of images per class (or train/ val/ [test/] folders)")
    p.add_argument("--model", default=DEFAULT_BACKBONE, help=f"registry backbone to start from (default: {DEFAULT_BACKBONE})")
    add_device(p)
    p.add_argument("--strategy", choices=[AUTO, *STRATEGIES], default=AUTO,
                   help="auto: the advisor measures the dataset and picks the strategy, blocks, epochs and input size (the JSON's "
                        "'advice' says why); classifier: pretrained as is; extract: frozen backbone + new head; finetune: also the "
                        "last blocks (default: auto)")
    p.add_argument("--head", choices=list(HEADS), default=DEFAULTS.head, help="new head: linear, or mlp = Dense(64)+BatchNorm+Dropout+Dense")
    p.add_argument("--unfreeze", type=int, default=None,
                   help=f"blocks to unfreeze with --strategy finetune, from the last (default: the advisor's with auto, else {DEFAULTS.unfreeze})")
    p.add_argument("--epochs", type=int, default=None, help=f"(default: the advisor's with auto, else {DEFAULTS.epochs})")
    p.add_argument("--head-epochs", type=int, default=None,
                   help=f"finetune: epochs that train the new head alone first (default: the advisor's with auto, else {DEFAULTS.head_epochs})")
    p.add_argument("--input-size", type=int, default=None,
                   help="side in pixels the network sees each whole photo at (default: the advisor's with auto, else the model's own preprocessing)")
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    p.add_argument("--lr", type=float, default=DEFAULTS.lr, help=f"head learning rate (default: {DEFAULTS.lr:g})")
    p.add_argument("--backbone-lr", type=float, default=DEFAULTS.backbone_lr, help="learning rate of the unfrozen blocks (default: the advisor's with auto, else lr / 10)")
    p.add_argument("--no-imagenet-init", dest="imagenet_init", action="store_false",
                   help="start a linear head from random weights even when every class name is an ImageNet class "
                        "(default: such a head starts from the network's own weights for those classes)")
    p.add_argument("--augment", action="store_true", help="RandomResizedCrop + RandomHorizontalFlip (slower: no feature cache)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of each class kept for validation when DATA_DIR has no val/ folder")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed)
    p.add_argument("--test-dir", default=None, help="folder of test images, one sub-folder per class (default: DATA_DIR/test if present)")
    p.add_argument("--out", default="my_model.pt", help="where to write the trained model (default: my_model.pt)")


def _rounded(value: float) -> float | None:
    return None if value != value else round(float(value), 4)  # NaN (a class absent from a set) is not JSON


def cmd_finetune(args):
    import time

    from explain.models import save_model
    from explain.transfer import dataset_from_folder, evaluate, plan_training, split_dataset, train_model

    start = time.perf_counter()
    test = dataset_from_folder(args.test_dir) if args.test_dir else None
    splits = split_dataset(dataset_from_folder(args.data), args.val_fraction, args.seed, test=test)
    backbone = common.load(args)
    plan = plan_training(backbone, splits) if args.strategy == AUTO else None
    given = {"unfreeze": args.unfreeze, "epochs": args.epochs, "head_epochs": args.head_epochs, "backbone_lr": args.backbone_lr,
             "input_size": args.input_size}
    given = {k: v for k, v in given.items() if v is not None}  # what the user set wins over the advisor's choice
    common_fields = dict(head=args.head, batch_size=args.batch_size, lr=args.lr, seed=args.seed, imagenet_init=args.imagenet_init, **given)
    if plan is not None:
        config = plan.config(**common_fields, **({"augment": True} if args.augment else {}))
    else:
        config = TrainConfig(strategy=args.strategy, augment=args.augment, **common_fields)
    result = train_model(backbone, splits, config)
    test_eval = evaluate(result.backbone, splits.test) if splits.test is not None and len(splits.test) else None
    out = str(save_model(result.backbone, args.out))
    data = {
        "classes": list(splits.classes),
        "val_acc": _rounded(result.val.accuracy),
        "test_acc": _rounded(test_eval.accuracy) if test_eval else None,
        "per_class": {c: _rounded(a) for c, a in result.val.per_class.items()},
        "test_per_class": {c: _rounded(a) for c, a in test_eval.per_class.items()} if test_eval else None,
        "seconds": round(time.perf_counter() - start, 2),
        "train_seconds": round(result.seconds, 2),
        "out": out,
        "model": args.model,
        "strategy": config.strategy,
        "strategy_requested": args.strategy,
        "advice": plan.as_dict() if plan is not None else None,
        "input_size": result.backbone.preprocess.input_size,
        "head": args.head if config.strategy != "classifier" else "imagenet",
        "unfreeze": config.unfreeze if config.strategy == "finetune" else 0,
        "epochs": len(result.history),
        "images": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test) if splits.test else 0},
        "split": "folders" if splits.given else f"stratified {args.val_fraction:g}",
        "trainable_params": result.trainable_params,
        "frozen_params": result.frozen_params,
        "history": [
            {"epoch": h.epoch, "phase": h.phase, "train_loss": round(h.train_loss, 4), "train_acc": round(h.train_acc, 4),
             "val_loss": round(h.val_loss, 4), "val_acc": round(h.val_acc, 4)}
            for h in result.history
        ],
        "class_map": result.class_map,
        "head_init": "imagenet" if result.class_map else "random",
        "skipped": list(splits.train.skipped),
    }
    lines = [
        f"{len(splits.classes)} classes: {', '.join(splits.classes)}  "
        f"({data['images']['train']} train / {data['images']['val']} val / {data['images']['test']} test images)",
        f"strategy {config.strategy}: {result.trainable_params:,} trainable, {result.frozen_params:,} frozen parameters",
    ]
    if plan is not None:
        lines[1:1] = ["advisor (auto):"] + [f"  {r.text}" for r in plan.reasons]
    lines += [f"  epoch {h['epoch']:>3} {h['phase']:<6}  loss {h['train_loss']:.3f}  train {h['train_acc'] * 100:5.1f}%  val {h['val_acc'] * 100:5.1f}%" for h in data["history"]]
    lines += [f"  {c}: {m}" for c, m in result.class_map.items()]
    lines.append(f"validation accuracy {result.val.accuracy * 100:.1f}%" + (f", test accuracy {test_eval.accuracy * 100:.1f}%" if test_eval else ""))
    if data["skipped"]:
        lines.append(f"skipped {len(data['skipped'])} files, e.g. {data['skipped'][0]}")
    lines.append(f"saved {out} in {data['seconds']:.1f} s; use it with --model {out}")
    return data, "\n".join(lines)


