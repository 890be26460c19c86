"""Generates docs/contract.md from the examples, the Structs and their schemas.

A hand-written contract document drifts from the code within weeks; this one
is rendered from the same Structs the decoders use, its examples are the
instances the tests decode, and its error examples come from running the
decoder.  ``--check`` (and a test) fail when the committed file is stale.

    python -m tools.contract_docs --write   # rewrite docs/contract.md
    python -m tools.contract_docs --check   # exit 1 when it differs
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Final

import msgspec

from coldgate.contract import examples
from coldgate.contract.codec import MESSAGE_TYPES, decode, encode
from coldgate.contract.errors import ContractError
from coldgate.contract.ids import (
    BOOT_PATTERN,
    GTIN_PATTERN,
    ID_PATTERN,
    MAX_EPOCH_MS,
    SSCC_PATTERN,
    EpochMs,
    Id,
)
from coldgate.contract.schema import generate
from coldgate.contract.topics import PREFIX, QOS, TOPICS
from coldgate.contract.uplink import Batch
from tools import contract_docs_text as docs_text

DOC_PATH: Final = Path(__file__).resolve().parent.parent / "docs" / "contract.md"

_PATTERN_NAMES: Final = {
    ID_PATTERN: "id",
    BOOT_PATTERN: "boot id",
    GTIN_PATTERN: "GTIN-14",
    SSCC_PATTERN: "SSCC",
}


def _json(msg: msgspec.Struct) -> str:
    return msgspec.json.format(encode(msg), indent=2).decode()


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _type(node: dict[str, Any], defs: dict[str, Any]) -> str:
    """A short, human type name for a schema node."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        target = defs[name]
        if "enum" in target:
            return " \\| ".join(f"`{json.dumps(v)}`" for v in target["enum"])
        return f"[{name}](#{name.lower()})"
    if "anyOf" in node:
        return " \\| ".join(_type(option, defs) for option in node["anyOf"])
    if "enum" in node:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    kind = node.get("type")
    if kind == "string":
        if node.get("format") == "date":
            return "date"
        return _PATTERN_NAMES.get(node.get("pattern", ""), "string")
    if kind == "integer":
        if node.get("maximum") == MAX_EPOCH_MS:
            return "epoch ms"
        return f"integer ≥ {node['minimum']}" if "minimum" in node else "integer"
    if kind == "array":
        return f"list of {_type(node['items'], defs)}"
    if kind == "object":
        value = node.get("additionalProperties", {})
        key = _type({"type": "string", **node.get("propertyNames", {})}, defs)
        return f"map {key} → {_type(value, defs) if value else 'any'}"
    if kind is None:
        return _PATTERN_NAMES.get(node["pattern"], "string") if "pattern" in node else "any JSON"
    return str(kind)


def _table(struct: dict[str, Any], defs: dict[str, Any], skip: frozenset[str]) -> list[str]:
    lines = ["| field | type | required | description |", "|---|---|---|---|"]
    required = set(struct.get("required", ()))
    for name, node in struct["properties"].items():
        if name in skip:
            continue
        if name in required:
            need = "yes"
        elif "default" in node:
            need = f"no, default `{json.dumps(node['default'], ensure_ascii=False)}`"
        else:
            need = "no"
        text = node.get("description", "")
        text = "" if text in _GENERIC else text
        lines.append(f"| `{name}` | {_type(node, defs)} | {need} | {_cell(text)} |")
    return lines


def _section(level: str, name: str, struct: dict[str, Any], defs: dict[str, Any]) -> list[str]:
    text = struct.get("description")
    return [f"{level} {name}", "", text, ""] if text else [f"{level} {name}", ""]


_COMMON: Final = ("seq", "ts", "boot", "mono", "synced")
#: Descriptions every id or time field inherits; the type column already says it.
_GENERIC: Final = frozenset(
    meta.description
    for alias in (Id, EpochMs)
    for meta in alias.__metadata__
    if isinstance(meta, msgspec.Meta)
)


def _errors() -> list[str]:
    good = encode(examples.BATCH)
    bad = {
        "another version": good.replace(b'"v":1', b'"v":2', 1),
        "truncated": good[:100],
        "a string as value": good.replace(b'"value":9.4', b'"value":"warm"', 1),
        "items out of order": good.replace(b'"seq":1042', b'"seq":1041', 1),
        "unknown item kind": good.replace(b'"kind":"gap"', b'"kind":"gasp"', 1),
        "bad check digit": good.replace(b'"gtin":"80614141123458"', b'"gtin":"80614141123459"'),
        "gateway not the topic's": good,
    }
    topic = f"{PREFIX}/{examples.SITE}/gw02/up/batch"
    lines = ["| payload | error |", "|---|---|"]
    for what, data in bad.items():
        try:
            decode(data, Batch, topic if what.startswith("gateway") else None)
        except ContractError as exc:
            lines.append(f"| {what} | `` {_cell(str(exc))} `` |")
        else:  # pragma: no cover - the docs would lie
            raise AssertionError(f"{what} decoded")
    return lines


def _topics() -> list[str]:
    lines = [
        "## Topics",
        "",
        "| topic | direction | retained | QoS | published by | payload | purpose |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, spec in TOPICS.items():
        payload = MESSAGE_TYPES[name].__name__
        lines.append(
            f"| `{PREFIX}/{{site}}/{{gateway}}/{spec.direction}/{name}` | {spec.direction} "
            f"| {'yes' if spec.retained else 'no'} | {QOS} | {spec.publisher} "
            f"| [{payload}](#{payload.lower()}) | {spec.purpose} |"
        )
    return lines


def render() -> str:
    out = [docs_text.HEADER, *_topics(), "", docs_text.SUBSCRIPTIONS, docs_text.ENCODING]
    out += [docs_text.VERSIONING, docs_text.TIME]
    batch_defs = generate(Batch)["$defs"]
    reading = batch_defs["Reading"]["properties"]
    common = {"properties": {k: reading[k] for k in _COMMON}, "required": _COMMON}
    out += [*_table(common, batch_defs, frozenset()), "", docs_text.ACK, docs_text.ERRORS]
    out += [*_errors(), ""]
    done: set[str] = set()
    for heading, names in (
        ("Up-link messages", ("batch", "status")),
        ("Down-link messages", ("ack", "config", "master", "recall", "command")),
    ):
        out += [f"## {heading}", ""]
        for name in names:
            type_ = MESSAGE_TYPES[name]
            defs = generate(type_)["$defs"]
            struct = defs[type_.__name__]
            spec = TOPICS[name]
            out += _section("###", type_.__name__, struct, defs)
            out += [f"Topic `{PREFIX}/{{site}}/{{gateway}}/{spec.direction}/{name}`.", ""]
            out += ["```json", _json(examples.MESSAGES[name]), "```", ""]
            if name == "status":
                out += ["A last will:", "", "```json", _json(examples.STATUS_WILL), "```", ""]
            out += [*_table(struct, defs, frozenset()), ""]
            done.add(type_.__name__)
            if name == "batch":
                out += _items(defs, done)
            out += _nested(defs, done)
    return "\n".join(out).rstrip() + "\n"


def _items(defs: dict[str, Any], done: set[str]) -> list[str]:
    out = [
        "## Items",
        "",
        "Every item has `kind` and the fields of "
        "[time evidence](#time-evidence-the-fields-of-every-item); the tables list the rest.",
        "",
    ]
    for kind, item in examples.ITEMS.items():
        name = type(item).__name__
        out += _section("###", name, defs[name], defs)
        out += [f'`"kind": "{kind}"`', "", "```json", _json(item), "```", ""]
        out += [*_table(defs[name], defs, frozenset({*_COMMON, "kind"})), ""]
        done.add(name)
    return out


def _nested(defs: dict[str, Any], done: set[str]) -> list[str]:
    out: list[str] = []
    for name, struct in defs.items():
        if name in done or "properties" not in struct:
            continue
        done.add(name)
        out += _section("####", name, struct, defs)
        out += [*_table(struct, defs, frozenset()), ""]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.contract_docs", description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite docs/contract.md")
    mode.add_argument("--check", action="store_true", help="exit 1 when it is stale")
    args = parser.parse_args(argv)
    text = render()
    current = DOC_PATH.read_text("utf-8") if DOC_PATH.exists() else None
    if args.write:
        if current != text:
            DOC_PATH.write_text(text, "utf-8")
            print(f"wrote {DOC_PATH}")
        return 0
    if current != text:
        print(f"{DOC_PATH}: differs from the code; run python -m tools.contract_docs --write")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
