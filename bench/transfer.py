"""Transfer-learning benchmark: accuracy and end-to-end seconds of `finetune` on two small datasets.

- hymenoptera (ants vs bees: ImageNet-like photos, its own train/val folders): the validation accuracy;
- sign-language digits (hand signs, 100 px: far from ImageNet): a fixed stratified 20 % of its train folder is held
  out (never trained or tuned on: the run's own validation split comes from the other 80 %) and given as --test-dir.

Runs the CLI in a fresh process per run (python start-up, decoding, the advisor, feature caching, training, testing,
saving all counted), with default settings unless --strategies names others ("auto" is the default: no flag).
Prints JSON and writes bench/results/transfer.json.

    python bench/transfer.py [--datasets ../shared/datasets] [--threads 2] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOLDOUT_FRACTION = 0.2
HOLDOUT_SEED = 16  # fixed: the same photos are held out in every run and every seed


def held_out_split(source: Path, dest: Path) -> tuple[Path, Path]:
    """Copy a folder of class folders into dest/train and dest/test: a fixed stratified share of each class is test."""
    rng = random.Random(HOLDOUT_SEED)
    for cls in sorted(p for p in source.iterdir() if p.is_dir()):
        files = sorted(f for f in cls.iterdir() if f.is_file())
        rng.shuffle(files)
        n_test = round(len(files) * HOLDOUT_FRACTION)
        for i, f in enumerate(files):
            out = dest / ("test" if i < n_test else "train") / cls.name / f.name
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, out)
    return dest / "train", dest / "test"


def run_cli(data: Path, strategy: str, model: str, threads: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model.pt"
        flag = [] if strategy == "auto" else ["--strategy", strategy]  # auto is the default: run it as a user would
        cmd = [sys.executable, "-m", "explain", "finetune", str(data), "--model", model, *flag, "--out", str(out), "--json", *extra]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        load_before = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            return {"strategy": strategy, "args": extra, "error": proc.stderr.strip()[-500:]}
        result = json.loads(proc.stdout)
        size = out.stat().st_size
    run = {
        "strategy": strategy,
        "strategy_used": result["strategy"],
        "advice": result.get("advice"),
        "val_acc": result["val_acc"],
        "test_acc": result["test_acc"],
        "head_init": result.get("head_init"),
        "per_class": result["per_class"],
        "seconds_end_to_end": round(wall, 2),
        # on a shared machine wall time is inflated by other jobs; CPU seconds / threads is the unloaded estimate
        "cpu_seconds": round(cpu, 2),
        "estimated_seconds_unloaded": round(cpu / threads, 2),
        "load_average_before": round(load_before, 2),
        "seconds_in_process": result["seconds"],
        "seconds_training": result["train_seconds"],
        "images": result["images"],
        "input_size": result.get("input_size"),
        "epochs": result["epochs"],
        "unfreeze": result["unfreeze"],
        "trainable_params": result["trainable_params"],
        "model_file_mb": round(size / 2**20, 1),
        "args": extra,
    }
    # each run as it ends, on stderr: a long benchmark on a busy machine shows its progress
    print(json.dumps({k: run[k] for k in ("strategy_used", "val_acc", "test_acc", "seconds_end_to_end", "cpu_seconds", "args")}),
          file=sys.stderr, flush=True)
    return run


def summary(runs: list[dict], key: str) -> dict:
    values = [r[key] for r in runs if r.get(key) is not None]
    seconds = [r["seconds_end_to_end"] for r in runs if "seconds_end_to_end" in r]
    unloaded = [r["estimated_seconds_unloaded"] for r in runs if "estimated_seconds_unloaded" in r]
    return {
        key: values,
        "mean": round(statistics.mean(values), 4) if values else None,
        "min": min(values, default=None),
        "max": max(values, default=None),
        "seconds_end_to_end_max": max(seconds, default=None),
        "estimated_seconds_unloaded_max": max(unloaded, default=None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=str(ROOT / "../shared/datasets"))
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--strategies", default="auto", help="comma-separated: auto (the default), classifier, extract, finetune")
    parser.add_argument("--seeds", type=int, default=3, help="run each with seeds 0..N-1 (validation split, head init, batch order)")
    parser.add_argument("--only", choices=["hymenoptera", "signs"], default=None, help="run one dataset only")
    parser.add_argument("--out", default=str(ROOT / "bench/results/transfer.json"))
    args = parser.parse_args()
    root = Path(args.datasets)
    strategies = args.strategies.split(",")
    seeds = range(args.seeds)
    report = {
        "benchmark": "transfer",
        "model": args.model,
        "threads": args.threads,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "targets": {"hymenoptera": {"val_acc": 0.95, "seconds": 30}, "signs": {"test_acc": 0.98, "seconds": 120}},
        "datasets": {},
    }
    if args.only in (None, "hymenoptera"):
        data = root / "hymenoptera_data"
        if not data.is_dir():
            sys.exit(f"no dataset at {data}")
        runs = [run_cli(data, s, args.model, args.threads, [] if seed == 0 else ["--seed", str(seed)]) for s in strategies for seed in seeds]
        report["datasets"]["hymenoptera"] = {
            "path": str(data), "split": "its own train/ and val/ folders", "runs": runs,
            "by_strategy": {s: summary([r for r in runs if r["strategy"] == s], "val_acc") for s in strategies},
        }
    if args.only in (None, "signs"):
        source = root / "sign-language-digits" / "train"
        if not source.is_dir():
            sys.exit(f"no dataset at {source}")
        with tempfile.TemporaryDirectory() as tmp:
            train, test = held_out_split(source, Path(tmp))
            runs = [run_cli(train, s, args.model, args.threads, ["--test-dir", str(test)] + ([] if seed == 0 else ["--seed", str(seed)]))
                    for s in strategies for seed in seeds]
        report["datasets"]["signs"] = {
            "path": str(source),
            "split": f"stratified {HOLDOUT_FRACTION:g} of each class held out as test (seed {HOLDOUT_SEED}); validation from the rest",
            "runs": runs,
            "by_strategy": {s: summary([r for r in runs if r["strategy"] == s], "test_acc") for s in strategies},
        }
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
