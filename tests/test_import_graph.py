"""The shipped packages import each other without a cycle.

A cycle is where a "small change" starts needing lazy imports and a careful
import order (the sensors' source factory and the reader sources used to import
each other).  Every import counts: at module level, inside a function, and under
``if TYPE_CHECKING:`` too, because a type-only back-reference is still a loop in
the design, one runtime import away from a real one (the config's tables and its
cross-table checks used to be such a pair).  Importing ``a.b.c`` runs ``a`` and
``a.b`` first, so a package's ``__init__`` is a node like any module.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Import path -> folder; the same table as setup.py and README.md.
ROOTS = {
    "coldgate": ROOT / "coldgate",
    "coldgate.contract": ROOT / "contract",
    "coldgate.gateway": ROOT / "gateway",
    "coldgate.cloud": ROOT / "cloud",
    "coldgate.simulator": ROOT / "simulator",
}


def shipped_modules() -> dict[str, Path]:
    """Every module of the wheel, by import name."""
    found: dict[str, Path] = {}
    for prefix, folder in ROOTS.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((prefix, *parts))] = path
    return found


def imported_names(name: str, path: Path) -> set[str]:
    """The dotted names a module imports, anywhere in it (targets may be modules or attributes)."""
    tree = ast.parse(path.read_text("utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the first-party modules that importing it runs (its own parent packages excluded)."""
    modules = shipped_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for dotted in imported_names(name, path):
            parts = dotted.split(".")
            # ``a.b.c`` runs a, a.b and a.b.c; keep those that are modules of ours.
            prefixes = (".".join(parts[:i]) for i in range(1, len(parts) + 1))
            targets.update(prefix for prefix in prefixes if prefix in modules)
        own_parents = {name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)}
        graph[name] = targets - own_parents - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def test_the_graph_covers_the_shipped_packages() -> None:
    graph = import_graph()
    expected = {"coldgate.cli", "coldgate.gateway.app", "coldgate.cloud.service", "coldgate.contract.codec"}
    assert expected <= set(graph)
    # The app's wiring imports every kind of source, and each kind the neutral interface.
    assert {"coldgate.gateway.source", "coldgate.gateway.readers.scanner"} <= graph["coldgate.gateway.app"]
    assert "coldgate.gateway.source" in graph["coldgate.gateway.sensors.modbus_poller"]


def test_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize(
    ("graph", "has_cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, False),
        ({"a": {"b"}, "b": {"a"}}, True),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True),
    ],
)
def test_the_check_finds_cycles(graph: dict[str, set[str]], has_cycle: bool) -> None:
    assert (find_cycle(graph) is not None) is has_cycle


def test_lazy_relative_and_type_only_imports_count(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    mod = pkg / "mod.py"
    mod.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import sibling\n"
        "if TYPE_CHECKING:\n    from pkg import hidden\n"
        "def f():\n    from pkg.lazy import x\n"
    )
    names = imported_names("pkg.mod", mod)
    assert {"pkg.sibling", "pkg.lazy", "pkg.lazy.x", "pkg.hidden"} <= names
