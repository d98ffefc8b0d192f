"""Find every string the app passes to t(), by reading the source with `ast`.

`python -m tests.i18n_extract` prints the strings that have no Korean entry yet, as a JSON object ready
to fill in and merge into assets/i18n/ko.json.

t("literal") is the normal case. Also understood: t({"a": "Label A", ...}[key]) (the dict's values),
t(name) where `name` is assigned string literals or bound by a loop over a module table of tuples, and
t(TABLE[key]) for a module-level dict/list (also one imported from explain.*). Anything else (an f-string,
a computed string) cannot be looked up in a translation table and is reported as unresolved.
"""

from __future__ import annotations

import ast
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ui_sources(root: Path = ROOT) -> list[Path]:
    """app.py, every page, and explain/ui/*.py: the files whose visible strings go through t()."""
    return [root / "app.py", *sorted((root / "lessons").glob("*.py")), *sorted((root / "explain" / "ui").glob("*.py"))]


@dataclass
class Extracted:
    strings: dict[str, list[str]] = field(default_factory=dict)  # text -> ["file:line", ...]
    unresolved: list[str] = field(default_factory=list)  # "file:line: source"


def _strings_in(node: ast.AST) -> list[str]:
    """String literals of a constant, a conditional of constants, or a container display (dict values only)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _strings_in(node.body) + _strings_in(node.orelse)
    if isinstance(node, ast.Dict):
        return [s for v in node.values for s in _strings_in(v)]
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [s for e in node.elts for s in _strings_in(e)]
    return []


def _visible(text: str) -> bool:
    """A table entry a user reads (not a file path, key or icon)."""
    return any(ch.isalpha() for ch in text) and not text.endswith(".py") and "/" not in text


class _Module:
    def __init__(self, path: Path, root: Path):
        self.path, self.root = path, root
        self.tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        self.tables: dict[str, ast.AST] = {}
        self.imports: dict[str, str] = {}
        for node in self.tree.body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    if isinstance(target, ast.Name):
                        self.tables[target.id] = node.value
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("explain"):
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = node.module

    def table(self, name: str) -> ast.AST | None:
        if name in self.tables:
            return self.tables[name]
        module = self.imports.get(name)
        if module is None:
            return None
        path = self.root / (module.replace(".", "/") + ".py")
        if not path.is_file():
            path = self.root / module.replace(".", "/") / "__init__.py"
        return _Module(path, self.root).table(name) if path.is_file() else None  # a package re-exports it: follow on

    def name_strings(self, name: str) -> list[str] | None:
        """Strings a local name can hold: its assignments of literals, or its slot in loops over a table."""
        found: list[str] = []
        bound = False
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Assign) and any(isinstance(tg, ast.Name) and tg.id == name for tg in node.targets):
                bound = True
                found += _strings_in(node.value)
            elif isinstance(node, (ast.For, ast.comprehension)):
                target, source = node.target, node.iter
                if isinstance(target, ast.Name) and target.id == name and isinstance(source, ast.Name):
                    bound = True
                    table = self.table(source.id)
                    found += [s for s in _strings_in(table) if _visible(s)] if table is not None else []
                elif isinstance(target, ast.Tuple) and isinstance(source, ast.Name):
                    slots = [i for i, e in enumerate(target.elts) if isinstance(e, ast.Name) and e.id == name]
                    table = self.table(source.id)
                    if slots and isinstance(table, (ast.List, ast.Tuple)):
                        bound = True
                        for row in table.elts:
                            if isinstance(row, (ast.Tuple, ast.List)) and len(row.elts) > slots[0]:
                                found += _strings_in(row.elts[slots[0]])
        return found if bound and found else None

    def resolve(self, arg: ast.AST) -> list[str] | None:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return [arg.value]
        if isinstance(arg, ast.IfExp):
            body, orelse = self.resolve(arg.body), self.resolve(arg.orelse)
            return None if body is None or orelse is None else body + orelse
        if isinstance(arg, ast.Subscript):
            table = arg.value
            if isinstance(table, ast.Name):
                table = self.table(table.id)
            if isinstance(table, ast.Dict):
                return _strings_in(table) or None
            if isinstance(table, (ast.List, ast.Tuple)):
                return [s for s in _strings_in(table) if _visible(s)] or None
            return None
        if isinstance(arg, ast.Name):
            return self.name_strings(arg.id)
        return None


def extract(paths: list[Path] | None = None, root: Path = ROOT) -> Extracted:
    """Every string given to t() in `paths` (default: ui_sources()), with where it is used."""
    out = Extracted()
    for path in paths or ui_sources(root):
        module = _Module(path, root)
        rel = path.relative_to(root)
        for node in ast.walk(module.tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "t" and node.args):
                continue
            where = f"{rel}:{node.lineno}"
            texts = module.resolve(node.args[0])
            if texts is None:
                out.unresolved.append(f"{where}: t({ast.unparse(node.args[0])})")
                continue
            for text in texts:
                out.strings.setdefault(text, []).append(where)
    return out


def korean_table(root: Path = ROOT) -> dict[str, str]:
    return json.loads((root / "assets" / "i18n" / "ko.json").read_text(encoding="utf-8"))


if __name__ == "__main__":
    found = extract()
    ko = korean_table()
    missing = {text: "" for text in found.strings if text not in ko}
    json.dump(missing, sys.stdout, ensure_ascii=False, indent=2)
    print()
    for line in found.unresolved:
        print("unresolved:", line, file=sys.stderr)
