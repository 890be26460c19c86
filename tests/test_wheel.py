"""The wheel a user installs: one top-level package, ``coldgate``, that imports with only its runtime extras.

Built from a clean export of the tracked files (nothing a developer left in the
tree gets in), installed into a fresh virtualenv with the versions of
constraints.txt and without the test extra, so a shipped module that imports
hypothesis, ``tests`` or ``bench`` fails here rather than on a Pi.
"""

from __future__ import annotations

import shutil
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.rig.commands import run_ok

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

#: Modules that run on import (the CLI's entry point, Alembic's environment) rather than define things.
NOT_IMPORTABLE_ALONE = ("coldgate.__main__", "coldgate.cloud.migrations.env")

IMPORT_EVERY_MODULE = f"""
import importlib, pkgutil, sys
import coldgate
skip = {NOT_IMPORTABLE_ALONE!r}
names = [m.name for m in pkgutil.walk_packages(coldgate.__path__, "coldgate.") if not m.name.startswith(skip)]
for name in names:
    importlib.import_module(name)
leaked = sorted({{m.split(".")[0] for m in sys.modules}} & {{"tests", "bench", "tools", "hypothesis",
    "gateway", "cloud", "contract", "simulator"}})
assert not leaked, leaked
print(len(names))
"""


def _run(*args: str | Path, cwd: Path) -> str:
    return run_ok(*args, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    export = tmp_path_factory.mktemp("export")
    tracked = _run("git", "ls-files", "-z", cwd=ROOT).split("\0")
    for name in filter(None, tracked):
        source = ROOT / name
        if source.is_file():
            (export / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, export / name)
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, export, cwd=export)
    (built,) = out.glob("coldgate-*.whl")
    return built


def test_the_wheel_has_one_top_level_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"coldgate"}
    # The data the code reads at run time ships beside it.
    for expected in (
        "coldgate/contract/schema/batch.json",
        "coldgate/gateway/sensors/profiles/generic.toml",
        "coldgate/cloud/migrations/script.py.mako",
        "coldgate/cloud/documents/gs1/EPCIS-JSON-Schema.json",
        "coldgate/simulator/llrp/fixtures/impinj-ro-access-reports.bin",
        "coldgate/gateway/source.py",
    ):
        assert expected in names, expected
    assert not [n for n in names if "strategies" in n or "/bench/" in n or "/tests/" in n]


def test_the_wheel_imports_in_a_fresh_venv_with_runtime_extras_only(wheel: Path, tmp_path: Path) -> None:
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    pip = (python, "-m", "pip", "install", "-q", "--disable-pip-version-check")
    _run(*pip, "-c", ROOT / "constraints.txt", f"{wheel}[gateway,cloud]", cwd=tmp_path)
    assert "hypothesis" not in _run(python, "-m", "pip", "list", "--format=freeze", cwd=tmp_path)
    _run(python, "-c", "import coldgate.cloud, coldgate.gateway", cwd=tmp_path)
    count = int(_run(python, "-c", IMPORT_EVERY_MODULE, cwd=tmp_path))
    assert count > 100
    assert "gateway" in _run(env / "bin" / "coldgate", "--help", cwd=tmp_path)
