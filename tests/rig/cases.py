"""Test cases as data: ``tests/testcases/<family>/<case>/``, one folder for each thing a case reproduces.

One convention for every family (barcodes, config, rules, sensors/decode,
portal, door_checks):

``input.<ext>``
    What goes in.  A family whose input must carry its own file name (config:
    ``gateway.toml`` or ``cloud.toml``, because the message names the file)
    says which names it takes with ``inputs=``.
``expected.<ext>``
    What must come out.

By extension: ``.json`` and ``.toml`` are parsed, ``.txt`` is text (``read_expected``
drops the final newline), ``.hex`` is bytes written as hex (whitespace ignored).
A family may group its cases one level deeper (``rules/<rule>/<case>/``); a case's
id is its path below the family folder.  Every folder that holds files is a case
and must hold exactly one input and one expected file, so a misnamed file fails
loudly instead of dropping a case.

A bug report becomes a new folder, not a new test function.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

TESTCASES = Path(__file__).resolve().parent.parent / "testcases"
INPUT = ("input.*",)


def family_dir(family: str) -> Path:
    return TESTCASES / family


def _files(folder: Path, patterns: Sequence[str]) -> list[Path]:
    return sorted({p for pattern in patterns for p in folder.glob(pattern) if p.is_file()})


def case_dirs(family: str, *, inputs: Sequence[str] = INPUT) -> list[Path]:
    """Every case folder of ``family``, sorted by id; fails on a folder that is not a whole case."""
    root = family_dir(family)
    cases = []
    for folder in sorted(p for p in root.rglob("*") if p.is_dir()):
        if not any(p.is_file() for p in folder.iterdir()):
            continue  # a group of cases (rules/<rule>/)
        given, expected = _files(folder, inputs), _files(folder, ["expected.*"])
        assert len(given) == 1 and len(expected) == 1, (
            f"{folder}: a case holds one input ({' or '.join(inputs)}) and one expected.*, "
            f"found {sorted(p.name for p in folder.iterdir())}"
        )
        cases.append(folder)
    assert cases, f"no cases in {root}"
    return cases


def case_id(case: Path, family: str) -> str:
    """The case's path below its family folder (``limits/door_spike_shorter_than_delay``)."""
    return case.relative_to(family_dir(family)).as_posix()


def each_case(family: str, *, inputs: Sequence[str] = INPUT, argname: str = "case") -> pytest.MarkDecorator:
    """``@each_case("barcodes")``: the test runs once per case folder, with the folder as ``case``."""
    cases = case_dirs(family, inputs=inputs)
    return pytest.mark.parametrize(argname, cases, ids=[case_id(c, family) for c in cases])


def input_file(case: Path, inputs: Sequence[str] = INPUT) -> Path:
    (given,) = _files(case, inputs)
    return given


def _parse(path: Path) -> Any:
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    if path.suffix == ".toml":
        with path.open("rb") as f:
            return tomllib.load(f)
    if path.suffix == ".hex":
        return bytes.fromhex("".join(path.read_text(encoding="ascii").split()))
    if path.suffix == ".txt":
        return path.read_text(encoding="utf-8")
    raise AssertionError(f"{path}: no reader for {path.suffix} files")


def read_input(case: Path, inputs: Sequence[str] = INPUT) -> Any:
    """The case's input: parsed JSON or TOML, bytes from hex, or text."""
    return _parse(input_file(case, inputs))


def input_bytes(case: Path) -> bytes:
    """The input exactly as bytes: a ``.hex`` file decoded, any other file as it is on disk."""
    given = input_file(case)
    return _parse(given) if given.suffix == ".hex" else given.read_bytes()


def read_expected(case: Path) -> Any:
    """The expected output: parsed JSON or TOML, or text without its final newline."""
    (expected,) = _files(case, ["expected.*"])
    out = _parse(expected)
    return out.rstrip("\n") if isinstance(out, str) else out
