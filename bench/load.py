"""Shared-classroom load test: 3 sessions run heavy jobs while a 4th switches layers.

Starts the app on 127.0.0.1 (a free port), opens four independent browser sessions in headless
Chromium (Debian's /usr/bin/chromium) and measures, for the light session, the time from choosing
another layer on Feature maps (the click on the option) until the new grid is on screen: the part
the server takes part in. The whole gesture, from the click that opens the layer list (drawn by the
browser alone), is reported beside it as `gesture_*`. The heavy sessions make an ideal
image, run an attack and train a transfer-learning head; each must finish with a correct result.
Bounded: every wait has a timeout and the light session makes at most --switches switches.
Loopback only.

All of it shares this machine's cores, browsers included. In a classroom the heavy sessions' browsers
run on the students' own computers, so here they run at a low priority (--heavy-browser-nice, 19 by
default; 0 puts them on equal terms); the light session's browser, whose drawing is part of the
latency measured, keeps the normal priority. Prints JSON and writes bench/results/load.json.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.timing import ms_summary  # noqa: E402
from tests.live_app import (  # noqa: E402
    CHROMIUM_ARGS,
    JOB_TIMEOUT_MS,
    chromium_path,
    layer_options,
    make_ideal_image,
    run_attack,
    running_app,
    settle,
    train_demo_model,
)


def on_page(path: str, action):
    def job(tab, base: str) -> dict:
        tab.goto(f"{base}/{path}")
        return action(tab)

    return job


HEAVY = {
    "ideal_image": on_page("Ideal_images", make_ideal_image),
    "attack": on_page("Adversarial", run_attack),
    "transfer_training": on_page("Transfer_learning", train_demo_model),
}


def niced(browser_path: str, nice: int, folder: Path) -> str:
    """A launcher that starts Chromium at a lower priority (nice 0: Chromium itself)."""
    if nice <= 0:
        return browser_path
    launcher = folder / "chromium-niced"
    launcher.write_text(f'#!/bin/sh\nexec nice -n {int(nice)} "{browser_path}" "$@"\n')
    launcher.chmod(0o755)
    return str(launcher)


def run_session(browser_path: str, work, base: str, out: dict, name: str) -> None:
    from playwright.sync_api import sync_playwright

    start = time.perf_counter()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=browser_path, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 1400})
            tab = context.new_page()
            tab.set_default_timeout(120_000)
            out[name] = work(tab, base)
            browser.close()
    except Exception as exc:  # a failed session is a result of the load test, not a crash of it
        out[name] = {"done": False, "correct": False, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
    out[name]["seconds"] = round(time.perf_counter() - start, 1)


def light_session(browser_path: str, base: str, out: dict, heavy_threads: list[threading.Thread], max_switches: int) -> None:
    from playwright.sync_api import sync_playwright

    times: list[float] = []
    gestures: list[float] = []
    during_heavy: list[bool] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path, args=CHROMIUM_ARGS)
        tab = browser.new_context(viewport={"width": 1280, "height": 1400}).new_page()
        tab.set_default_timeout(60_000)
        tab.goto(f"{base}/Feature_maps")
        tab.get_by_text(re.compile(r"channels \(row by row")).first.wait_for(timeout=180_000)
        settle(tab)
        options, names = layer_options(tab)
        for i in range(max_switches):
            k = (i * 3 + 1) % len(options)
            heavy_running = any(th.is_alive() for th in heavy_threads)
            opened = time.perf_counter()
            tab.get_by_role("combobox", name="Layer", exact=True).click()
            option = tab.get_by_role("option").filter(has_text=options[k]).first
            option.wait_for()
            start = time.perf_counter()
            option.click()
            tab.get_by_text(re.compile(rf"^{re.escape(names[k])}: \d+ of \d+ channels")).first.wait_for()
            times.append((time.perf_counter() - start) * 1000)
            gestures.append((time.perf_counter() - opened) * 1000)
            during_heavy.append(heavy_running)
            if not any(th.is_alive() for th in heavy_threads) and i >= 10:
                break
            tab.wait_for_timeout(300)  # a student looks at the grid before the next click
        browser.close()
    loaded = [t for t, h in zip(times, during_heavy) if h]
    out["light"] = {"switches": len(times), "switches_during_heavy_jobs": len(loaded), "all_ms": [round(t) for t in times],
                    **{f"during_heavy_{k}": v for k, v in ms_summary(loaded).items()}, **{f"all_{k}": v for k, v in ms_summary(times).items()},
                    **{f"gesture_during_heavy_{k}": v for k, v in ms_summary([g for g, h in zip(gestures, during_heavy) if h]).items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--switches", type=int, default=60, help="most layer switches of the light session")
    parser.add_argument("--baseline", action="store_true", help="only the light session, no heavy jobs (the quiet latency)")
    parser.add_argument("--heavy-browser-nice", type=int, default=19, help="niceness of the heavy sessions' browsers (0: as the light one)")
    args = parser.parse_args()
    browser_path = chromium_path()
    if browser_path is None:
        sys.exit("Chromium not found: apt-get install chromium (see scripts/setup_chromium.sh)")
    results: dict = {"bench": "load", "heavy_browser_nice": args.heavy_browser_nice}
    with tempfile.TemporaryDirectory() as tmp, running_app(Path(tmp) / "server.log") as base:
        started = time.perf_counter()
        heavy_browser = niced(browser_path, args.heavy_browser_nice, Path(tmp))
        jobs = {} if args.baseline else HEAVY
        heavy = [threading.Thread(target=run_session, args=(heavy_browser, work, base, results, name)) for name, work in jobs.items()]
        for th in heavy:
            th.start()
        time.sleep(5)  # the heavy sessions have clicked their buttons
        light_session(browser_path, base, results, heavy, args.switches)
        for th in heavy:
            th.join(timeout=JOB_TIMEOUT_MS / 1000)
        results["wall_seconds"] = round(time.perf_counter() - started, 1)
    results["all_heavy_jobs_correct"] = None if args.baseline else all(results.get(name, {}).get("correct") for name in HEAVY)
    p95 = results["light"].get("during_heavy_p95_ms")
    results["light_p95_under_1s_during_heavy"] = p95 is not None and p95 <= 1000
    out = ROOT / "bench" / "results" / ("load_baseline.json" if args.baseline else "load.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
