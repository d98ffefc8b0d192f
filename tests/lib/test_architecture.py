"""The shape of explain/: imports point one way (no cycle), only explain/ui imports streamlit, modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

from ..conftest import ROOT

PACKAGE = ROOT / "explain"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path) -> dict[str, set[str]]:
    """explain module -> the explain modules it imports anywhere in its file (top level or inside functions).

    Importing explain.a.b also runs the package explain.a first: that counts as an import of explain.a, except
    from inside explain.a itself (the package is already running then).
    """
    files = {module_name(f, root): f for f in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.add(node.module)
                targets |= {f"{node.module}.{alias.name}" for alias in node.names}
        edges = set()
        for target in targets:
            if target not in files:
                continue
            parts = target.split(".")
            for depth in range(2, len(parts) + 1):  # the packages on the way run too
                step = ".".join(parts[:depth])
                if step in files and not (name == step or name.startswith(step + ".")):
                    edges.add(step)
        edges.discard(name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle_in_explain():
    cycle = find_cycle(import_graph(PACKAGE))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle(tmp_path):
    pkg = tmp_path / "explain"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "models" / "__init__.py").write_text("from explain.models.files import load\n")
    (pkg / "models" / "files.py").write_text("def load():\n    import explain.transfer\n")
    (pkg / "transfer.py").write_text("from explain.images import prepare\n")
    (pkg / "images.py").write_text("from explain.models import Preprocess\n")
    cycle = find_cycle(import_graph(pkg))
    assert cycle is not None and set(cycle) == {"explain.models", "explain.models.files", "explain.transfer", "explain.images"}
    (pkg / "images.py").write_text("import numpy\n")
    assert find_cycle(import_graph(pkg)) is None


def test_only_the_ui_package_imports_streamlit():
    graph_files = [f for f in PACKAGE.rglob("*.py") if "ui" not in f.relative_to(PACKAGE).parts]
    offenders = []
    for path in graph_files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n.split(".")[0] == "streamlit" for n in names):
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders


def test_library_imports_point_down_from_ui():
    """explain/ui may use the library; the library never uses explain/ui (data flows page -> ui -> library)."""
    graph = import_graph(PACKAGE)
    upward = sorted(f"{m} -> {t}" for m, targets in graph.items() if not m.startswith("explain.ui") for t in targets if t.startswith("explain.ui"))
    assert not upward


def test_modules_stay_readable():
    long = {str(f.relative_to(ROOT)): n for f in PACKAGE.rglob("*.py") if (n := len(f.read_text(encoding="utf-8").splitlines())) > 520}
    assert not long, f"modules over ~500 lines: {long}"
