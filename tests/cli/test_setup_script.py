"""scripts/setup.sh (what ./run.sh and ./test.sh run first): installs only what is missing, and says so truthfully."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from ..conftest import ROOT


def _checkout(tmp_path: Path) -> Path:
    """A copy of the set-up script and requirements, with a .venv whose python records every pip call."""
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", root / "scripts" / "setup.sh")
    for req in ROOT.glob("requirements*.txt"):
        shutil.copy(req, root / req.name)
    python = root / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/usr/bin/env bash\necho "$@" >> "{root}/pip-calls"\n')
    python.chmod(0o755)
    return root


def _want(root: Path) -> str:
    data = b"".join(p.read_bytes() for p in sorted(root.glob("requirements*.txt")))
    return hashlib.sha1(data).hexdigest()


def _setup(root: Path, req: str) -> str:
    done = subprocess.run(["bash", "-c", f"source scripts/setup.sh {req}"], cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_the_app_after_the_tests_installs_nothing_and_says_nothing(tmp_path):
    root = _checkout(tmp_path)
    (root / ".venv" / ".deps-requirements-dev.txt.sha").write_text(_want(root) + "\n")  # ./test.sh installed everything
    assert _setup(root, "requirements.txt") == ""
    assert not (root / "pip-calls").exists()
    assert _setup(root, "requirements.txt") == ""  # and the next start is as quiet


def test_an_existing_environment_is_updated_not_installed_for_the_first_time(tmp_path):
    root = _checkout(tmp_path)
    said = _setup(root, "requirements.txt")
    assert "first time" not in said and "changed: updating" in said
    assert "-r" in (root / "pip-calls").read_text()
    assert _setup(root, "requirements.txt") == ""  # installed now: the stamp matches
