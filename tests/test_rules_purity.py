"""Rules are pure (DESIGN.md, principle 2): this test fails if a module in gateway/rules/ does I/O.

Each file's syntax tree is checked against an allow-list of imports (not a
deny-list: a new dependency has to be argued for here), and against calls
that read a clock, the environment or a file, and hidden mutable globals.
Transitive imports cannot be checked this way (``contract`` itself pulls in
half the standard library), which is why the allow-list names only modules
that do no I/O when *called* by the rules.  Every module must also import.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

RULES_DIR = Path(__file__).resolve().parent.parent / "gateway" / "rules"
MODULES = sorted(p for p in RULES_DIR.glob("*.py"))

ALLOWED_ROOTS = {
    "__future__",
    "typing",
    "types",
    "dataclasses",
    "math",
    "enum",
    "collections",
    "hashlib",  # the alert id's digest: a pure function of its input
    "msgspec",
}
#: Single names the rules may take from standard modules not allowed whole (functools also has
#: lru_cache, a hidden global): cached_property keeps derived values on one parameters instance.
ALLOWED_NAMES = {"functools": {"cached_property"}}
#: First-party packages the rules may import from: the wire contract and each other.
ALLOWED_PACKAGES = ("coldgate.contract", "coldgate.gateway.rules")
#: Names the rules may take from gateway modules outside gateway/rules/.
ALLOWED_GATEWAY = {"coldgate.gateway.observations": {"UNSEQUENCED"}}
#: Imported only for type annotations (under ``if TYPE_CHECKING:``).
TYPE_ONLY = {"coldgate.gateway.config"}

FORBIDDEN_CALLS = {"open", "print", "input", "exec", "eval", "compile", "__import__", "breakpoint"}
FORBIDDEN_ATTRS = {
    "now",
    "utcnow",
    "today",
    "time",
    "time_ns",
    "monotonic",
    "monotonic_ns",
    "perf_counter",
    "sleep",
    "getenv",
    "environ",
    "urandom",
    "random",
    "uuid4",
    "stamp",
}


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _first_party_allowed(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in ALLOWED_PACKAGES)


def _problems(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if _type_checking_block(node):
            type_only.update(id(n) for n in ast.walk(node))
    found: list[str] = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] not in ALLOWED_ROOTS and not _first_party_allowed(alias.name):
                    found.append(f"{where}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = {a.name for a in node.names}
            if node.level or module.split(".")[0] in ALLOWED_ROOTS or _first_party_allowed(module):
                continue
            if module in ALLOWED_GATEWAY and names <= ALLOWED_GATEWAY[module]:
                continue
            if module in ALLOWED_NAMES and names <= ALLOWED_NAMES[module]:
                continue
            if module in TYPE_ONLY and id(node) in type_only:
                continue
            found.append(f"{where}: from {module} import {', '.join(sorted(names))}")
        elif (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS
        ):
            found.append(f"{where}: call to {node.func.id}()")
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRS:
            found.append(f"{where}: use of .{node.attr}")
        elif isinstance(node, ast.Global | ast.Nonlocal):
            found.append(f"{where}: global state ({', '.join(node.names)})")
    for node in tree.body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        if isinstance(value, ast.List | ast.Dict | ast.Set | ast.ListComp | ast.DictComp | ast.SetComp):
            found.append(f"{path.name}:{node.lineno}: mutable module-level value")
    return found


def test_there_are_rule_modules() -> None:
    names = {p.stem for p in MODULES}
    assert {"limits", "budget", "rate", "faults", "mkt", "recording", "evidence", "engine", "params"} <= names


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_module_does_no_io(path: Path) -> None:
    assert _problems(path) == []


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_module_imports(path: Path) -> None:
    name = "coldgate.gateway.rules" if path.stem == "__init__" else f"coldgate.gateway.rules.{path.stem}"
    importlib.import_module(name)


@pytest.mark.parametrize(
    "source",
    [
        "import time\n",
        "import socket\n",
        "from pathlib import Path\n",
        "import os.path\n",
        "from datetime import datetime\n",
        "x = open('f')\n",
        "import datetime as d\nx = d.datetime.now()\n",
        "from coldgate.gateway.clock import SystemClock\n",
        "from coldgate.gateway.config import GatewayConfig\n",
        "import coldgate.gateway.clock\n",
        "from coldgate.contractual import x\n",
        "import logging\n",
        "import sqlite3\n",
        "import asyncio\n",
        "CACHE = {}\n",
        "def f():\n    global n\n",
    ],
)
def test_the_check_catches(source: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.py"
    path.write_text(source, encoding="utf-8")
    assert _problems(path), source
