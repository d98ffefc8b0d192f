"""Transfer-learning benchmark: accuracy and end-to-end seconds of `finetune` on hymenoptera (ants vs bees).

Runs the CLI in a fresh process per strategy (python start-up, decoding, feature caching, training,
saving all counted), with default settings. Prints JSON and writes bench/results/transfer.json.

    python bench/transfer.py [--data ../shared/datasets/hymenoptera_data] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_strategy(data: Path, strategy: str, model: str, threads: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model.pt"
        cmd = [sys.executable, "-m", "explain", "finetune", str(data), "--model", model, "--strategy", strategy,
               "--out", str(out), "--json", *extra]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            return {"strategy": strategy, "error": proc.stderr.strip()[-500:]}
        result = json.loads(proc.stdout)
        size = out.stat().st_size
    return {
        "strategy": strategy,
        "val_acc": result["val_acc"],
        "head_init": result.get("head_init"),
        "per_class": result["per_class"],
        "seconds_end_to_end": round(wall, 2),
        # on a shared machine wall time is inflated by other jobs; CPU seconds / threads is the unloaded estimate
        "cpu_seconds": round(cpu, 2),
        "estimated_seconds_unloaded": round(cpu / threads, 2),
        "seconds_in_process": result["seconds"],
        "seconds_training": result["train_seconds"],
        "images": result["images"],
        "epochs": result["epochs"],
        "unfreeze": result["unfreeze"],
        "trainable_params": result["trainable_params"],
        "model_file_mb": round(size / 2**20, 1),
        "args": extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "../shared/datasets/hymenoptera_data"))
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--strategies", default="extract,finetune", help="comma-separated; classifier is also allowed")
    parser.add_argument("--seeds", type=int, default=1, help="run each strategy with seeds 0..N-1 (head init, batch order, split)")
    parser.add_argument("--random-head-too", action="store_true",
                        help="also run every strategy with --no-imagenet-init (a head from random weights, as in the PyTorch tutorial)")
    parser.add_argument("--out", default=str(ROOT / "bench/results/transfer.json"))
    args = parser.parse_args()
    data = Path(args.data)
    if not data.is_dir():
        sys.exit(f"no dataset at {data}")
    seeds = range(args.seeds)
    heads = [[], ["--no-imagenet-init"]] if args.random_head_too else [[]]
    runs = [run_strategy(data, s, args.model, args.threads, head + ([] if seed == 0 else ["--seed", str(seed)]))
            for s in args.strategies.split(",") for head in heads for seed in seeds]
    report = {
        "benchmark": "transfer",
        "dataset": data.name,
        "model": args.model,
        "threads": args.threads,
        "cpu": platform.processor() or platform.machine(),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "targets": {"val_acc": 0.95, "extract_seconds": 30},
        "runs": runs,
        "val_acc_by_strategy": {
            s + (" random head" if head else ""): [r.get("val_acc") for r in runs if r["strategy"] == s and r["args"][:len(head)] == head
                                                   and ("--no-imagenet-init" in r["args"]) == bool(head)]
            for s in args.strategies.split(",") for head in heads
        },
    }
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
