"""The package's shape: imports between its modules form no cycle and point down the layers.

Read from the source with ``ast`` (function-level imports included), so nothing is imported.
Layers, bottom to top: settings, vocabulary, stats and the DAG kit's run context, assets and triggers ->
store -> messaging, registry -> surveys -> delivery, checkins, independence, handover -> redflags -> nps, ops -> web, cli, the Airflow plugin,
the DAG defaults (their failure notifier is ops'), dev. A module may import its own
layer or any below it; nothing in production imports ``auxeng.dev`` (demo and benchmark data).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "plugins" / "auxeng"

LAYERS: list[set[str]] = [
    {"auxeng", "settings", "vocabulary", "text", "csvinput", "stats", "dagkit"},
    {"store"},
    {"messaging", "registry"},
    {"surveys"},
    {"delivery", "checkins", "independence", "handover"},
    {"redflags"},
    {"nps", "ops"},
    {"web", "cli", "__main__", "airflow_plugin", "dagkit.defaults", "triggers", "dev"},
]
LAYER = {name: n for n, names in enumerate(LAYERS) for name in names}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (``from a import b`` counts ``a.b`` when it is one)."""
    paths = {module_name(p, package): p for p in package.rglob("*.py") if "migrations" not in p.parts}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                candidates = [f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base for a in node.names]
            else:
                continue
            for target in candidates:
                while target and target not in paths:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer_of(module: str) -> int:
    """The layer of the longest listed prefix (``dagkit.defaults`` before ``dagkit``)."""
    name = module.removeprefix("auxeng.") if module != "auxeng" else module
    while name not in LAYER:
        name = name.rpartition(".")[0]
    return LAYER[name]


def test_the_package_is_read():
    graph = import_graph()
    assert {"auxeng.messaging.outbox", "auxeng.web.application", "auxeng.vocabulary"} <= set(graph)
    assert "auxeng.store.db" in graph["auxeng.messaging.outbox"]


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_every_domain_has_a_layer():
    domains = {p.stem for p in PACKAGE.glob("*") if p.suffix == ".py" or p.is_dir()}
    domains -= {"__pycache__", "__init__"}
    assert domains <= set(LAYER), f"give {sorted(domains - set(LAYER))} a layer in this test"


def test_imports_point_down_the_layers():
    upward = [
        f"{source} -> {target}"
        for source, targets in import_graph().items()
        for target in targets
        if layer_of(target) > layer_of(source)
    ]
    assert upward == []


def test_production_code_never_imports_the_demo_data():
    graph = import_graph()
    users = sorted(
        source
        for source, targets in graph.items()
        if not source.startswith(("auxeng.dev", "auxeng.cli"))
        and any(t.startswith("auxeng.dev") for t in targets)
    )
    assert users == []


@pytest.mark.parametrize(
    ("modules", "expected"),
    [
        ({"a": "from pkg import b\n", "b": "import pkg.a\n"}, [["pkg.a", "pkg.b"]]),
        ({"a": "from pkg import b\n", "b": "x = 1\n"}, []),
        ({"a": "def f():\n    from pkg.b import x\n", "b": "from . import a\n"}, [["pkg.a", "pkg.b"]]),
    ],
)
def test_the_checker_finds_cycles_also_in_function_level_and_relative_imports(tmp_path, modules, expected):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, source in modules.items():
        (package / f"{name}.py").write_text(source)
    assert cycles(import_graph(package)) == expected
