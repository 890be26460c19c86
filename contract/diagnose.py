"""Making a decode failure point at the exact field, where msgspec stops short.

msgspec names the path of most errors, but not: the field a cross-field rule
in ``__post_init__`` is about, the key of a bad map entry (it says
``$.data[...]``), the string holding bytes that are not UTF-8 (it raises
``UnicodeDecodeError`` without a path), or what a regex means.  These helpers
run only after a decode has failed, so they cost nothing on the happy path.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

import msgspec

from coldgate.contract.errors import ContractError, FieldError, join_path, split_msgspec_error
from coldgate.contract.ids import PATTERN_HELP
from coldgate.contract.items import ITEM_TYPES

_REGEX_REASON: Final = re.compile(r"^Expected `str` matching regex '(?P<regex>.*)'$", re.DOTALL)
_STEP: Final = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_PLAIN_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
ITEM_KINDS: Final = tuple(sorted(str(t.__struct_config__.tag) for t in ITEM_TYPES))
_PARSE_FAILURES: Final = (msgspec.MsgspecError, RecursionError, UnicodeError)


def field_error(exc: msgspec.ValidationError, data: bytes, topic: str | None) -> ContractError:
    """The ContractError for a ValidationError, with the most precise path known."""
    path, reason = split_msgspec_error(exc)
    cause = exc.__cause__
    if isinstance(cause, FieldError):
        path, reason = join_path(path, cause.field), cause.reason
    regex = _REGEX_REASON.match(reason)
    if regex is not None:
        pattern = regex["regex"].replace("\\\\", "\\")
        if pattern in PATTERN_HELP:
            reason = f"expected {PATTERN_HELP[pattern]}"
    if path.endswith(".kind") and reason.startswith("Invalid value "):
        reason = f"unknown item kind {reason[14:]} (this build knows {', '.join(ITEM_KINDS)})"
    return ContractError(_name_map_entry(data, path), reason, topic)


def utf8_error(data: bytes, topic: str | None) -> ContractError:
    """Name the string that holds bytes which are not UTF-8."""
    try:
        data.decode("utf-8")
        return ContractError("$", "invalid UTF-8", topic)
    except UnicodeDecodeError as exc:
        reason = f"invalid UTF-8 at byte {exc.start}"
    try:
        doc = msgspec.json.decode(data.decode("utf-8", "replace"))
        path = _find_replacement(doc, "$") or "$"
    except _PARSE_FAILURES:
        path = "$"
    return ContractError(path, reason, topic)


def _step(path: str, key: str) -> str:
    return f"{path}.{key}" if _PLAIN_KEY.fullmatch(key) else f"{path}[{json.dumps(key)}]"


def _is_scalar(value: object) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return -(2**63) <= value < 2**64
    return isinstance(value, str | float | bool)


def _name_map_entry(data: bytes, path: str) -> str:
    """Replace msgspec's `[...]` (some entry of a scalar map) by the offending key."""
    head, found, tail = path.partition("[...]")
    if not found or tail:
        return path
    try:
        node: Any = msgspec.json.decode(data)
    except _PARSE_FAILURES:
        return path
    for key, index in _STEP.findall(head[1:]):
        try:
            node = node[int(index)] if index else node[key]
        except (KeyError, IndexError, TypeError):
            return path
    if not isinstance(node, dict):
        return path
    for key, value in node.items():
        if not _is_scalar(value):
            return _step(head, key)
    return path


def _find_replacement(node: Any, path: str) -> str | None:
    """Path of the first string or key holding U+FFFD (where undecodable bytes were)."""
    if isinstance(node, str):
        return path if "\ufffd" in node else None
    if isinstance(node, list):
        for index, value in enumerate(node):
            found = _find_replacement(value, f"{path}[{index}]")
            if found:
                return found
    if isinstance(node, dict):
        for key, value in node.items():
            step = _step(path, key)
            found = step if "\ufffd" in key else _find_replacement(value, step)
            if found:
                return found
    return None
