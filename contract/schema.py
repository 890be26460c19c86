"""JSON Schemas of the wire contract, generated from the code and kept in the repo.

Consumers outside Python (a broker plugin, a partner's integration, a
reviewer) read the schema files; the code is the source of truth.  The
``--check`` mode and a test fail when the two drift, so a changed Struct
cannot be merged without its changed schema.  Cross-field rules (sequence
order, quality/value) live in the Struct docstrings, which the schema carries
as descriptions.

    python -m coldgate.contract.schema --write   # regenerate contract/schema/*.json
    python -m coldgate.contract.schema --check   # exit 1 when a file differs
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path
from typing import Any, Final

import msgspec

from coldgate.contract.codec import MESSAGE_TYPES
from coldgate.contract.version import CONTRACT_VERSION

SCHEMA_DIR: Final = Path(__file__).parent / "schema"
DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"


def generate(type_: type[msgspec.Struct]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one top-level message; items are ``$defs``."""
    body = _clean(msgspec.json.schema(type_))
    title = f"Coldgate contract v{CONTRACT_VERSION}: {type_.__name__}"
    return {"$schema": DIALECT, "title": title, **body}


def _clean(node: Any) -> Any:
    """Dedent docstring descriptions so they read well in JSON and Markdown."""
    if isinstance(node, dict):
        return {
            key: inspect.cleandoc(value) if isinstance(value, str) and key == "description" else _clean(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_clean(value) for value in node]
    return node


def render(type_: type[msgspec.Struct]) -> str:
    return json.dumps(generate(type_), indent=2, ensure_ascii=False) + "\n"


def files() -> dict[Path, str]:
    """Every schema file and the text it must hold, one per topic name."""
    return {SCHEMA_DIR / f"{name}.json": render(t) for name, t in MESSAGE_TYPES.items()}


def drift() -> list[Path]:
    """Schema files that are missing or differ from the code, plus stray ones."""
    wanted = files()
    stale = [p for p, text in wanted.items() if not p.exists() or p.read_text("utf-8") != text]
    stray = [p for p in sorted(SCHEMA_DIR.glob("*.json")) if p not in wanted]
    return stale + stray


def write() -> list[Path]:
    SCHEMA_DIR.mkdir(exist_ok=True)
    changed = drift()
    wanted = files()
    for path in changed:
        if path in wanted:
            path.write_text(wanted[path], "utf-8")
        else:
            path.unlink()
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coldgate.contract.schema", description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite contract/schema/*.json")
    mode.add_argument("--check", action="store_true", help="exit 1 when the files drifted")
    args = parser.parse_args(argv)
    if args.write:
        for path in write():
            print(f"wrote {path}")
        return 0
    stale = drift()
    for path in stale:
        print(f"{path}: differs from the code; run python -m coldgate.contract.schema --write")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
