"""The pipeline's layout: `eventing` imports forward only, with no function-level escape hatch.

Every import is read with `ast`, those inside functions included, so a cycle cannot hide behind
a lazy import. Function-level imports of project modules are allowed only where Django or an
optional dependency needs them: `AppConfig.ready()`, the lazy `eventing.emit` (the package is
imported before apps are ready) and `eventing.verify`'s DRF classes (DRF is optional for
receivers).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.processes import ROOT

PROJECT = ("eventing", "triggers", "mission_control")
# (module, function) pairs whose function-level project imports are deliberate.
LAZY_ALLOWED = {
    ("eventing.apps", "ready"),
    ("eventing", "__getattr__"),
    ("eventing.verify", "__getattr__"),
}


def modules(package: str) -> dict[str, Path]:
    """Dotted name → file of every module of `package` (migrations left out)."""
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported_names(module: str, path: Path, node: ast.AST) -> list[str]:
    """The dotted names an import statement brings in (`from a import b` gives a and a.b)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    if node.level:
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [target] + [f"{target}.{alias.name}" for alias in node.names]


def import_graph() -> tuple[dict[str, set[str]], list[str]]:
    """Edges between eventing modules, and the function-level project imports outside the
    allowed places (as `module:function -> target`)."""
    mods = modules("eventing")
    edges: dict[str, set[str]] = {name: set() for name in mods}
    lazy = []
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets = imported_names(name, path, node)
                edges[name] |= {
                    t for t in targets if t in mods and t != name and not name.startswith(t + ".")
                }
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    targets = imported_names(name, path, node)
                    if any(t.split(".")[0] in PROJECT for t in targets) and (
                        (name, func.name) not in LAZY_ALLOWED
                    ):
                        lazy.append(f"{name}:{func.name} -> {targets[0]}")
    return edges, lazy


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in edges:
        if node not in index:
            visit(node)
    return found


def unit_of(module: str) -> str:
    """The layer a module belongs to: its subpackage of eventing (`eventing.store`), else the
    top-level module itself (`eventing.models`, `eventing.tasks`)."""
    return ".".join(module.split(".")[:2])


def package_graph(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph folded onto eventing's subpackages and top-level modules."""
    folded: dict[str, set[str]] = {unit_of(name): set() for name in edges}
    for name, targets in edges.items():
        folded[unit_of(name)] |= {unit_of(t) for t in targets} - {unit_of(name)}
    return folded


# The layers, lowest first (README "Where things are" states the same order): a layer imports
# only layers before it. Top-level modules beneath the stages (conf, models, runtime, ops) and
# the entry points above them are checked for cycles by test_eventing_has_no_package_cycle.
LAYERS = [
    "eventing.store",
    "eventing.webhooks",
    "eventing.dispatch",
    "eventing.recording",
    "eventing.capture",
    "eventing.delivery",
    "eventing.maintenance",
]

# Beneath every layer (README, docs/architecture.md): they import none of eventing's stages.
BASE = [
    "eventing.conf",
    "eventing.models",
    "eventing.subscription_models",  # the subscription tables, re-exported by models
    "eventing.runtime",
    "eventing.ops",
]
# Above every layer: nothing in the layers or the base imports them.
ENTRY_POINTS = ["eventing.api", "eventing.tasks", "eventing.management"]


def test_eventing_has_no_import_cycle():
    edges, _ = import_graph()
    assert cycles(edges) == []


def test_eventing_has_no_package_cycle():
    """No two subpackages (nor a top-level module) import each other, directly or through
    others: folders are layers, not only modules free of cycles."""
    edges, _ = import_graph()
    assert cycles(package_graph(edges)) == []


def test_layers_import_only_layers_before_them():
    edges, _ = import_graph()
    graph = package_graph(edges)
    backward = [
        f"{layer} -> {target}"
        for n, layer in enumerate(LAYERS)
        for target in sorted(graph[layer])
        if target in LAYERS[n + 1 :]
    ]
    assert backward == []


def test_the_base_imports_nothing_but_the_base():
    graph = package_graph(import_graph()[0])
    above = [f"{unit} -> {target}" for unit in BASE for target in sorted(graph[unit] - set(BASE))]
    assert above == []


def test_no_layer_imports_an_entry_point():
    graph = package_graph(import_graph()[0])
    upward = [
        f"{unit} -> {target}"
        for unit in LAYERS + BASE
        for target in sorted(graph[unit] & set(ENTRY_POINTS))
    ]
    assert upward == []


def test_a_package_cycle_is_found_though_modules_have_none():
    """The package check can fail where the module check passes: a.x -> b.y -> a.z."""
    edges = {
        "eventing.a.x": {"eventing.b.y"},
        "eventing.b.y": {"eventing.a.z"},
        "eventing.a.z": set(),
    }
    assert cycles(edges) == []
    assert cycles(package_graph(edges)) == [["eventing.a", "eventing.b"]]


def test_no_function_level_imports_of_project_modules():
    _, lazy = import_graph()
    assert lazy == []


def test_the_cycle_finder_finds_cycles():
    """The check above can fail: a two-module and a three-module cycle are both reported."""
    edges = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert sorted(cycles(edges)) == [["a", "b"], ["c", "d", "e"]]


def test_triggers_imports_neither_eventing_nor_mission_control():
    for name, path in modules("triggers").items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets = imported_names(name, path, node)
                assert not any(t.startswith(("eventing", "mission_control")) for t in targets), name


def test_eventing_never_imports_mission_control():
    for name, path in modules("eventing").items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets = imported_names(name, path, node)
                assert not any(t.startswith("mission_control") for t in targets), name


def test_readme_map_names_every_module():
    """A newcomer finds every module of the pipeline in the README's map."""
    readme = (ROOT / "README.md").read_text()
    missing = [
        str(path.relative_to(ROOT))
        for name, path in modules("eventing").items()
        if path.name != "__init__.py"
        and "management" not in path.parts
        and str(path.relative_to(ROOT)) not in readme
    ]
    assert missing == []
