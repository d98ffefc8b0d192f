"""The app as a user lives it: a real browser against the app started the README way (./run.sh), beside the CLI.

One user, an otherwise idle server. Measures, in headless Chromium (Debian's /usr/bin/chromium):
- the first visit of Home after the server started (until the page has finished running);
- page switches through the sidebar (click to the new page finished running), p50/p95;
- layer switches on Feature maps (the option's click to the new grid on screen), p50/p95;
- heavy jobs in the app beside the same work on the CLI in the same run: an ideal image (clear preset, the page's
  defaults) and a targeted PGD attack on Chelsea. The app's time is from the button's click to the result on screen;
  the CLI's is the whole process (`python -m explain …`, model load included) and its own job time ("seconds").
Prints JSON and writes bench/results/app.json. Targets (issue 15): heavy job in the app ≤ 1.2× the CLI's,
page switch p95 ≤ 1.0 s, layer switch p95 ≤ 0.5 s, first visit of Home ≤ 8 s.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.timing import ms_summary  # noqa: E402
from tests.live_app import CHROMIUM_ARGS, JOB_TIMEOUT_MS, chromium_path, layer_options, running_app, settle  # noqa: E402

PAGES = ["Classify", "Feature_maps", "Grad-CAM", "Ideal_images", "Adversarial", "Transfer_learning"]


def cli(*argv: str) -> dict:
    """Run a CLI verb with --json; its JSON and the whole process's seconds."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "explain", *argv, "--json"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return {"json": json.loads(done.stdout), "process_s": time.perf_counter() - began}


def first_visit(tab, base: str) -> float:
    began = time.perf_counter()
    tab.goto(base)
    tab.get_by_role("heading", name="CNN Lens").wait_for(timeout=180_000)
    settle(tab, quiet_ms=300)
    return time.perf_counter() - began - 0.3  # the quiet time settle waits for is not the app's


def page_switches(tab, rounds: int) -> list[float]:
    times = []
    nav = tab.locator('[data-testid="stSidebarNav"]')
    for i in range(rounds):
        name = PAGES[i % len(PAGES)]
        link = nav.locator(f'a[href$="/{name}"]')
        began = time.perf_counter()
        link.click()
        tab.wait_for_url(re.compile(rf"/{re.escape(name)}(\?|$)"))
        tab.locator("h1").first.wait_for()
        settle(tab, quiet_ms=300)
        times.append((time.perf_counter() - began - 0.3) * 1000)
    return times


def layer_switches(tab, base: str, count: int) -> list[float]:
    tab.goto(f"{base}/Feature_maps")
    tab.get_by_text(re.compile(r"channels \(row by row")).first.wait_for(timeout=180_000)
    settle(tab)
    options, names = layer_options(tab)
    times = []
    for i in range(count):
        k = (i * 3 + 1) % len(options)
        tab.get_by_role("combobox", name="Layer", exact=True).click()
        option = tab.get_by_role("option").filter(has_text=options[k]).first
        option.wait_for()
        began = time.perf_counter()
        option.click()
        tab.get_by_text(re.compile(rf"^{re.escape(names[k])}: \d+ of \d+ channels")).first.wait_for()
        times.append((time.perf_counter() - began) * 1000)
        settle(tab)
    return times


def press_on(tab, url: str, button: str) -> float:
    """Open a page, wait until it has finished running, press a button; the moment of the click."""
    tab.goto(url)
    tab.get_by_role("button", name=button).wait_for(timeout=180_000)
    settle(tab)
    began = time.perf_counter()
    tab.get_by_role("button", name=button).click()
    return began


def ideal_in_app(tab, base: str) -> float:
    began = press_on(tab, f"{base}/Ideal_images", "Make the image")
    tab.get_by_role("heading", name=re.compile(r"^Result: ")).first.wait_for(timeout=JOB_TIMEOUT_MS)
    return time.perf_counter() - began


def attack_in_app(tab, base: str) -> dict:
    began = press_on(tab, f"{base}/Adversarial", "Attack")
    tab.locator('[data-testid="stMetric"]').filter(has_text="Time").first.wait_for(timeout=JOB_TIMEOUT_MS)
    wall = time.perf_counter() - began
    shown = tab.locator('[data-testid="stMetric"]').filter(has_text="Time").first.locator('[data-testid="stMetricValue"]').inner_text()
    return {"click_to_result_s": wall, "job_s_shown": float(shown.split()[0])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page-switches", type=int, default=24)
    parser.add_argument("--layer-switches", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "app.json"))
    args = parser.parse_args()
    path = chromium_path()
    if path is None:
        raise SystemExit("Chromium not found: apt-get install chromium (scripts/setup_chromium.sh)")
    from playwright.sync_api import sync_playwright

    from explain.images import sample_image, save_png

    work = Path(tempfile.mkdtemp(prefix="cnn-lens-bench-app-"))
    chelsea = save_png(sample_image("chelsea"), work / "chelsea.png")
    result: dict = {"started_as": "./run.sh --server.port P --server.address 127.0.0.1 (the README's command)"}
    began = time.perf_counter()
    with running_app(work / "server.log", start_timeout_s=180) as base, sync_playwright() as pw:
        result["server_start_s"] = round(time.perf_counter() - began, 2)
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        tab = browser.new_context(viewport={"width": 1280, "height": 1400}).new_page()
        tab.set_default_timeout(120_000)
        result["first_visit_home_s"] = round(first_visit(tab, base), 2)
        tab.goto(f"{base}/Classify")  # the model is loaded once before the page-switch timings
        tab.locator("h1").first.wait_for(timeout=180_000)
        settle(tab)
        result["page_switch"] = ms_summary(page_switches(tab, args.page_switches))
        result["layer_switch"] = ms_summary(layer_switches(tab, base, args.layer_switches))
        app_ideal = ideal_in_app(tab, base)
        app_attack = attack_in_app(tab, base)
        log = (work / "server.log").read_text(errors="replace")
        result["server_log_inotify_overflows"] = log.count("Inotify queue overflowed")
        browser.close()
    cli_ideal = cli("ideal", "--target", "281", "--out", str(work / "ideal.png"))
    cli_attack = cli("attack", str(chelsea), "--target", "golden retriever", "--out-dir", str(work))
    result["ideal_image"] = {
        "app_click_to_result_s": round(app_ideal, 2), "cli_job_s": cli_ideal["json"]["seconds"],
        "cli_process_s": round(cli_ideal["process_s"], 2), "app_over_cli_job": round(app_ideal / cli_ideal["json"]["seconds"], 2),
    }
    cli_attack_s = cli_attack["json"][0]["seconds"]
    result["pgd_attack"] = {
        "app_click_to_result_s": round(app_attack["click_to_result_s"], 2), "app_job_s_shown": app_attack["job_s_shown"],
        "cli_job_s": cli_attack_s, "cli_process_s": round(cli_attack["process_s"], 2),
        "app_shown_over_cli_job": round(app_attack["job_s_shown"] / cli_attack_s, 2),
    }
    result["targets"] = {
        "heavy_job_app_over_cli_le_1_2": result["ideal_image"]["app_over_cli_job"] <= 1.2 and result["pgd_attack"]["app_shown_over_cli_job"] <= 1.2,
        "page_switch_p95_le_1000_ms": (result["page_switch"]["p95_ms"] or 1e9) <= 1000,
        "layer_switch_p95_le_500_ms": (result["layer_switch"]["p95_ms"] or 1e9) <= 500,
        "first_visit_home_le_8_s": result["first_visit_home_s"] <= 8,
    }
    text = json.dumps(result, indent=2)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
