"""`python -m explain VERB …`: every feature from the shell; `--json` prints machine-readable results.

Each verb is two functions: ``args_<verb>(parser)`` adds its options and ``cmd_<verb>(args)``
returns ``(data, text)``: the JSON-able result and the human-readable one. A user's mistake
(LensError) exits 2 with one line on stderr; a verb that could do only part of its work (one
bad image of several) prints what it did and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from explain.cli.common import PartialFailure
from explain.cli.inside import args_neuron, args_overview, cmd_neuron, cmd_overview
from explain.cli.look import (
    args_cam,
    args_classify,
    args_features,
    args_models,
    args_summary,
    cmd_cam,
    cmd_classify,
    cmd_features,
    cmd_models,
    cmd_summary,
)
from explain.cli.make import args_attack, args_ideal, cmd_attack, cmd_ideal
from explain.cli.microscope import args_index, args_microscope, cmd_index, cmd_microscope
from explain.cli.train import args_finetune, cmd_finetune
from explain.cli.trust import args_trust, cmd_trust
from explain.errors import LensError

VERBS: dict[str, tuple[str, Callable, Callable]] = {
    "models": ("list the backbones and where their weights come from", args_models, cmd_models),
    "summary": ("Keras-style summary of a backbone", args_summary, cmd_summary),
    "classify": ("top-k ImageNet classes of images", args_classify, cmd_classify),
    "features": ("feature maps of one layer as a channel grid", args_features, cmd_features),
    "overview": ("the whole network for one photo: each main layer's strongest channels, then the top classes", args_overview, cmd_overview),
    "neuron": ("one neuron explained: its receptive field and the arithmetic that made its value", args_neuron, cmd_neuron),
    "index": ("index a photo set for the channel microscope: each channel's maximum and its place, per photo", args_index, cmd_index),
    "microscope": ("one channel's strongest photos from an index, each cut to the channel's receptive field", args_microscope, cmd_microscope),
    "cam": ("where the network looked: Grad-CAM and 14 other class-map methods over the photo", args_cam, cmd_cam),
    "trust": ("can I trust this map? deletion, insertion, ROAD against a random map; randomisation and class checks", args_trust, cmd_trust),
    "ideal": ("an ideal image of a class or a channel, made by gradient steps from noise", args_ideal, cmd_ideal),
    "attack": ("adversarial PNGs that make the network say another class", args_attack, cmd_attack),
    "finetune": ("train a new head (transfer learning) on a folder of class folders", args_finetune, cmd_finetune),
}


class _Parser(argparse.ArgumentParser):
    """argparse's own errors (a bad option or value) as one line too; the usage is in --help."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m explain", description="CNN Lens: see what a convolutional network does.")
    sub = parser.add_subparsers(dest="verb", required=True)
    for name, (help_text, add_args, _) in VERBS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_args(p)
        p.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
    return parser


def _emit(args, data, text: str) -> None:
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    elif text:
        print(text)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help (0) or a usage error (2), already printed
        return done.code if isinstance(done.code, int) else 2
    _, _, run = VERBS[args.verb]
    try:
        data, text = run(args)
    except PartialFailure as partial:
        _emit(args, partial.data, partial.text)
        print(f"error: {partial}", file=sys.stderr)
        return 1
    except LensError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line, never a traceback for a user
        print(f"error: unexpected {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        if os.environ.get("CNN_LENS_DEBUG"):
            raise
        return 1
    _emit(args, data, text)
    return 0

