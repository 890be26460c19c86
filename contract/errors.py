"""Turning msgspec's decode errors into errors that name the field.

msgspec reports a bad field as ``"Expected `int`, got `str` - at `$.items[3].seq`"``.
Both the wire contract and the config loader need that split into the field
path and the reason, so the split lives here once.
"""

from __future__ import annotations

import re

import msgspec

_AT = re.compile(r"^(?P<reason>.*?) - at (?P<key>`key` in )?`(?P<path>\$[^`]*)`$", re.DOTALL)
_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `(?P<field>[^`]*)`$")
_MISSING_FIELD = re.compile(r"^Object missing required field `(?P<field>[^`]*)`$")


def split_msgspec_error(exc: msgspec.MsgspecError) -> tuple[str, str]:
    """Return ``(path, reason)`` for a msgspec error.

    The path uses msgspec's ``$.a.b[2]`` form; ``$`` when the error is about the
    whole document (truncated or not JSON at all).  For unknown and missing
    fields the field itself is appended to the path, since that is where the
    reader has to look.
    """
    text = str(exc)
    match = _AT.match(text)
    # msgspec leaves out " - at `$`" for errors about the top-level object itself.
    path, reason = (match["path"], match["reason"]) if match else ("$", text)
    if match and match["key"]:
        reason = f"key: {reason}"
    for pattern in (_UNKNOWN_FIELD, _MISSING_FIELD):
        field = pattern.match(reason)
        if field is not None:
            path = f"{path}.{field['field']}"
            break
    return path, reason


class ContractError(ValueError):
    """A message that does not follow the wire contract.

    ``path`` names the offending field (``$.items[3].seq``); ``reason`` says why.
    ``topic`` is filled in by whoever knows where the message came from.
    """

    def __init__(self, path: str, reason: str, topic: str | None = None) -> None:
        self.path = path
        self.reason = reason
        self.topic = topic
        where = f"{topic}: " if topic else ""
        super().__init__(f"{where}{path}: {reason}")

    @classmethod
    def from_msgspec(cls, exc: msgspec.MsgspecError, topic: str | None = None) -> ContractError:
        path, reason = split_msgspec_error(exc)
        return cls(path, reason, topic)


class FieldError(ValueError):
    """A cross-field rule broken inside a message, raised from ``__post_init__``.

    msgspec only knows the path of the object whose ``__post_init__`` failed
    (``$.items[3]``); ``field`` is the rest of the path relative to that object
    (``value``, ``items[3].seq``), so the decoder can report the exact field.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


def join_path(base: str, field: str) -> str:
    """``join_path("$.items[0]", "value") == "$.items[0].value"``; index fields join bare."""
    if not field:
        return base
    return f"{base}{field}" if field.startswith("[") else f"{base}.{field}"
