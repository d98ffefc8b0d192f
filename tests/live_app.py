"""The real app (`streamlit run app.py`) on a free loopback port, for browser tests and the load bench."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JOB_TIMEOUT_MS = 600_000
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def chromium_path() -> str | None:
    """Debian's Chromium (or one named by $CNN_LENS_CHROMIUM); None when there is none."""
    for candidate in (os.environ.get("CNN_LENS_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(log_path: Path, start_timeout_s: float = 90, env: dict | None = None) -> Iterator[str]:
    """Start the app the README way (`./run.sh`, only the port and address added) and yield its base URL.

    Whatever else a user gets from run.sh and .streamlit/config.toml (the file watcher, the toolbar, the upload cap)
    the tests and benchmarks get too. No terminal: run.sh then starts Streamlit headless. Stopped on exit.
    """
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if k != "CNN_LENS_WARMUP"}  # the server warms up as a user's does
    env = {**inherited, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", **(env or {})}
    cmd = ["bash", str(ROOT / "run.sh"), "--server.port", str(port), "--server.address", "127.0.0.1"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not answer /_stcore/health in {start_timeout_s}s")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def settle(tab, timeout_ms: int = 120_000, quiet_ms: int = 600) -> None:
    """Wait until the app has finished running: no script running, no status widget ("Running…") for `quiet_ms`."""
    tab.wait_for_selector('[data-testid="stAppViewContainer"]')
    deadline = time.monotonic() + timeout_ms / 1000
    quiet_since = None
    while time.monotonic() < deadline:
        # Streamlit's own flag on stApp says whether a script runs (its status widget appears only after a delay)
        running = (
            tab.locator('[data-testid="stApp"][data-test-script-state="running"]').count() > 0
            or tab.locator('[data-testid="stStatusWidget"]').count() > 0
            or tab.locator('[data-stale="true"]').count() > 0
        )
        if running:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif (time.monotonic() - quiet_since) * 1000 >= quiet_ms:
            return
        tab.wait_for_timeout(100)
    raise AssertionError("the app kept running")


def choose(tab, label: str, option: str) -> None:
    """Pick `option` (visible text, a prefix is enough) in the select box labelled `label`."""
    tab.get_by_role("combobox", name=label, exact=True).click()
    tab.get_by_role("option").filter(has_text=option).first.click()


def set_number(tab, label: str, value: int) -> None:
    """Type `value` into the number input labelled `label` and let the app take it."""
    box = tab.get_by_role("spinbutton", name=label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    settle(tab)


def press_slider(tab, label, *keys: str) -> str:
    """Move the slider labelled `label` (a string or a pattern) with keys ("Home", "ArrowRight", …); its new value."""
    slider = tab.get_by_role("slider", name=label)
    slider.focus()
    for key in keys:
        slider.press(key)
    settle(tab)
    return slider.get_attribute("aria-valuetext")


def layer_options(tab) -> tuple[list[str], list[str]]:
    """Feature maps page: the Layer box's options as shown ("4. blocks.1.0 · …") and the layer names in them."""
    tab.get_by_role("combobox", name="Layer", exact=True).click()
    options = [o.inner_text() for o in tab.get_by_role("option").all()]
    tab.keyboard.press("Escape")
    return options, [re.match(r"\d+\. (\S+)", o).group(1) for o in options]


def main_button(tab, name: str):
    """A button of the page itself (Streamlit's header has a Stop of its own)."""
    return tab.locator('[data-testid="stMain"]').get_by_role("button", name=name, exact=True)


# ---------------------------------------------------------------- heavy actions (browser tests and bench/load.py)


def make_ideal_image(tab) -> dict:
    """Ideal images page: press "Make the image" and wait for the result (its held-out rank when shown)."""
    tab.get_by_role("button", name="Make the image").wait_for()
    settle(tab)
    tab.get_by_role("button", name="Make the image").click()
    heading = tab.get_by_role("heading", name=re.compile(r"^Result: "))
    heading.first.wait_for(timeout=JOB_TIMEOUT_MS)
    settle(tab, JOB_TIMEOUT_MS)
    text = tab.locator('[data-testid="stMain"]').inner_text()
    match = re.search(r"(efficientnet_lite\d) \(never used\): rank (\d+)", text)
    return {"done": True, "result": heading.first.inner_text(), "held_out_rank": int(match.group(2)) if match else None,
            "correct": heading.first.count() > 0}


def run_attack(tab) -> dict:
    """Adversarial page: press "Attack" with the defaults and read the verdict on the saved PNG."""
    tab.get_by_role("button", name="Attack").wait_for()
    settle(tab)
    tab.get_by_role("button", name="Attack").click()
    verdict = tab.locator('[data-testid="stAlertContentSuccess"], [data-testid="stAlertContentWarning"]').filter(
        has_text=re.compile(r"fooled", re.I)
    )
    verdict.first.wait_for(timeout=JOB_TIMEOUT_MS)
    text = verdict.first.inner_text()
    return {"done": True, "result": text.splitlines()[0], "correct": text.startswith("Fooled")}


def train_demo_model(tab) -> dict:
    """Transfer page: train on the default demo set and read the validation accuracy."""
    tab.get_by_role("button", name="Train").wait_for()
    settle(tab)
    tab.get_by_role("button", name="Train").click()
    metric = tab.locator('[data-testid="stMetric"]').filter(has_text="Validation accuracy")
    metric.first.wait_for(timeout=JOB_TIMEOUT_MS)
    value = metric.first.locator('[data-testid="stMetricValue"]').inner_text()
    accuracy = float(value.strip().rstrip("%")) / 100
    return {"done": True, "result": f"validation accuracy {value}", "val_acc": accuracy, "correct": accuracy > 0.6}
