"""The web package's imports point one way: no cycle inside ``auxeng.web`` (counting imports inside
functions too), and nothing in the pack below the web imports it."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "plugins" / "auxeng"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported(path: Path) -> set[str]:
    """Every ``auxeng`` module ``path`` imports, at the top or inside a function
    (``from package import module`` counts as importing the module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                names.add(full if is_module(full) else node.module)
    return {name for name in names if name == "auxeng" or name.startswith("auxeng.")}


def test_the_web_modules_import_each_other_without_a_cycle():
    modules = {module_name(path): path for path in (PACKAGE / "web").rglob("*.py")}
    graph = {name: {other for other in imported(path) if other in modules} for name, path in modules.items()}
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        assert name not in visiting, f"import cycle: {' -> '.join([*visiting, name])}"
        visiting.append(name)
        for other in sorted(graph[name]):
            visit(other)
        visiting.pop()
        order.append(name)

    for name in sorted(graph):
        visit(name)
    assert "auxeng.web.common" in order and "auxeng.web.dashboard.routes" in order


def test_nothing_below_the_web_imports_it():
    below = [path for path in PACKAGE.rglob("*.py") if "web" not in path.relative_to(PACKAGE).parts]
    importers = {
        module_name(path): sorted(name for name in imported(path) if name.startswith("auxeng.web"))
        for path in below
    }
    allowed = {"auxeng.cli", "auxeng.__main__", "auxeng.airflow_plugin"}  # above the web in the layers
    assert {name: web for name, web in importers.items() if web and name not in allowed} == {}
