"""Run every CLI verb with --json on scikit-image photos and keep the output, to check a refactor changed nothing.

    python scripts/cli_snapshot.py --save DIR       # before the change
    python scripts/cli_snapshot.py --compare DIR    # after it: exits 1 and prints a diff when any verb differs

Timings ("seconds", "train_seconds") are left out; the PNG and .npy files a verb writes are compared by their
SHA-1. Every verb runs in a fresh process with the same seeds and the same work folder, so paths match too.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path("/tmp/cnn-lens-cli-snapshot")
TIMINGS = {"seconds", "train_seconds"}


def _inputs() -> dict[str, str]:
    sys.path.insert(0, str(ROOT))
    from explain.images import sample_image, save_png

    if WORK.exists():
        shutil.rmtree(WORK)
    (WORK / "out").mkdir(parents=True)
    paths = {}
    for name in ("chelsea", "coffee", "astronaut"):
        paths[name] = str(save_png(sample_image(name), WORK / f"{name}.png"))
    # a small two-class folder for finetune: patches of two texture photos
    import numpy as np

    rng = np.random.default_rng(0)
    for cls in ("brick", "grass"):
        photo = sample_image(cls)
        for i in range(8):
            top, left = int(rng.integers(0, photo.shape[0] - 96)), int(rng.integers(0, photo.shape[1] - 96))
            save_png(np.ascontiguousarray(photo[top : top + 96, left : left + 96]), WORK / "data" / cls / f"{i}.png")
    paths["data"] = str(WORK / "data")
    return paths


def _runs(p: dict[str, str]) -> dict[str, list[str]]:
    out = str(WORK / "out")
    return {
        "models": ["models"],
        "summary": ["summary"],
        "classify": ["classify", p["chelsea"], p["coffee"], "--topk", "3"],
        "classify_interp": ["classify", p["astronaut"], "--interpolation", "area"],
        "features_list": ["features", p["chelsea"]],
        "features_layer": ["features", p["chelsea"], "--layer", "blocks.3.0", "--out", f"{out}/grid.png", "--channels", "16"],
        "cam_gradcam": ["cam", p["chelsea"], "--out", f"{out}/cam.png", "--save-map", f"{out}/cam.npy"],
        "cam_gradcampp": ["cam", p["coffee"], "--method", "gradcampp", "--layer", "blocks.5", "--target", "espresso"],
        "cam_saliency": ["cam", p["chelsea"], "--method", "saliency", "--save-map", f"{out}/sal.npy"],
        "cam_smoothgrad": ["cam", p["chelsea"], "--method", "smoothgrad", "--samples", "4", "--save-map", f"{out}/sg.npy"],
        "ideal_class": ["ideal", "--target", "tabby", "--steps", "6", "--size", "96", "--out", f"{out}/ideal.png"],
        "ideal_course": ["ideal", "--method", "pixels", "--steps", "5", "--size", "64", "--out", f"{out}/ideal_px.png"],
        "ideal_channel": ["ideal", "--layer", "blocks.2", "--channel", "3", "--steps", "4", "--size", "64"],
        "attack_pgd": ["attack", p["chelsea"], p["coffee"], "--target", "golden retriever", "--out-dir", out],
        "attack_untargeted": ["attack", p["astronaut"], "--untargeted", "--method", "mifgsm", "--steps", "4", "--out-dir", out],
        "attack_fgsm": ["attack", p["coffee"], "--untargeted", "--method", "fgsm", "--out-dir", f"{out}/fgsm"],
        "finetune_extract": ["finetune", p["data"], "--epochs", "2", "--out", f"{out}/m.pt"],
        "finetune_finetune": ["finetune", p["data"], "--strategy", "finetune", "--epochs", "1", "--head-epochs", "1", "--out", f"{out}/m2.pt"],
        "finetune_classifier": ["finetune", p["data"], "--strategy", "classifier", "--out", f"{out}/m3.pt"],
        "classify_my_model": ["classify", p["chelsea"], "--model", f"{out}/m.pt"],
        "index_folder": ["index", p["data"], "--out", f"{out}/photos.index"],
        "microscope": ["microscope", "--index", f"{out}/photos.index", "--layer", "blocks.3.0", "--channel", "5", "--top", "3", "--out-dir", f"{out}/patches"],
        "error_unknown_class": ["attack", p["chelsea"], "--target", "no such class"],
    }


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _hashes() -> dict[str, str]:
    files = sorted(f for f in (WORK / "out").rglob("*") if f.suffix in (".png", ".npy"))
    return {str(f.relative_to(WORK)): hashlib.sha1(f.read_bytes()).hexdigest() for f in files}


def snapshot() -> dict:
    paths = _inputs()
    result = {}
    for name, argv in _runs(paths).items():
        proc = subprocess.run(
            [sys.executable, "-m", "explain", *argv, "--json"], cwd=ROOT, capture_output=True, text=True, env=None
        )
        try:
            data = _strip(json.loads(proc.stdout)) if proc.stdout.strip() else None
        except json.JSONDecodeError:
            data = proc.stdout
        result[name] = {"rc": proc.returncode, "json": data, "stderr": proc.stderr.strip().splitlines()[-1:] }
        print(f"{name}: rc {proc.returncode}", file=sys.stderr)
    result["_files"] = _hashes()
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", metavar="DIR")
    group.add_argument("--compare", metavar="DIR")
    args = ap.parse_args()
    now = snapshot()
    text = json.dumps(now, ensure_ascii=False, indent=1, sort_keys=False)
    if args.save:
        Path(args.save).mkdir(parents=True, exist_ok=True)
        (Path(args.save) / "cli.json").write_text(text, encoding="utf-8")
        return 0
    before = (Path(args.compare) / "cli.json").read_text(encoding="utf-8")
    if before == text:
        print(json.dumps({"identical": True, "verbs": len(now) - 1, "files": len(now["_files"])}))
        return 0
    sys.stdout.writelines(difflib.unified_diff(before.splitlines(True), text.splitlines(True), "before", "after"))
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
