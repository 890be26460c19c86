"""Loading TOML config files into typed, frozen objects, with errors that point at the key.

Every Coldgate config (gateway, cloud, and each source plugin's block) is a
tree of ``ConfigBlock`` structs.  ``load_toml`` parses a file with tomllib and
``convert_document`` turns the parsed document into those structs with
msgspec; the same ``convert_document`` is used for configuration the cloud
pushes down over MQTT as JSON, so a bad push is rejected with the same words
as a bad file.  Every mistake becomes one ``ConfigError`` naming the file, the
key path and what was expected versus what was found — a technician on site
has the file open and nothing else.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from coldgate import configdescribe as cd
from coldgate.contract.errors import split_msgspec_error

T = TypeVar("T")

__all__ = [
    "ConfigBlock",
    "ConfigError",
    "convert_document",
    "format_key",
    "load_toml",
    "read_toml",
]

format_key = cd.format_key


class ConfigBlock(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Base of every config table.

    Unknown keys are rejected (a misspelt key silently falling back to a
    default is how a freezer ends up judged against room-temperature limits);
    instances are frozen so a config can be shared between tasks and hashed.
    Both settings are inherited; ``kw_only`` is not (msgspec applies it per
    class), so every subclass says ``kw_only=True`` to let required keys follow
    keys with defaults.
    """


class ConfigError(ValueError):
    """One mistake in a config document.

    ``file`` is the file name as given (or where a pushed document came from),
    ``key`` the TOML key path (``sensors[2].unit``; empty when the whole file is
    at fault), ``expected``/``found`` are set for "wrong value" mistakes, and
    ``message`` is the text after the key.  ``line``/``column`` are set for TOML
    syntax errors, the only ones tomllib can place in the file.
    """

    def __init__(
        self,
        key: str,
        message: str | None = None,
        *,
        expected: str | None = None,
        found: str | None = None,
        file: str = "",
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        if message is None:
            if expected is None or found is None:
                raise TypeError("ConfigError needs a message, or both expected and found")
            message = f"expected {expected}, got {found}"
        self.key = key
        self.message = message
        self.expected = expected
        self.found = found
        self.file = file
        self.line = line
        self.column = column
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.key
        if self.line is not None:
            where = f"line {self.line}, column {self.column}" if self.column else f"line {self.line}"
        return ": ".join(part for part in (self.file, where, self.message) if part)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps the error intact across process boundaries (multiprocessing, pickled logs).
        kwargs = {
            "expected": self.expected,
            "found": self.found,
            "file": self.file,
            "line": self.line,
            "column": self.column,
        }
        return (_rebuild_error, (self.key, self.message, kwargs))

    def in_file(self, file: str) -> ConfigError:
        """The same error, attributed to ``file`` (validators do not know where they run)."""
        return ConfigError(
            self.key,
            self.message,
            expected=self.expected,
            found=self.found,
            file=file,
            line=self.line,
            column=self.column,
        )


def _rebuild_error(key: str, message: str, kwargs: dict[str, Any]) -> ConfigError:
    return ConfigError(key, message, **kwargs)


# ---------------------------------------------------------------- reading

_TOML_AT = re.compile(r"^(?P<msg>.*) \(at (?:line (?P<line>\d+), column (?P<col>\d+)|end of document)\)$")
#: tomllib's words for the two mistakes hand-edited files make most.
_TOML_HINTS = {
    "Cannot overwrite a value": "a key is set twice (Cannot overwrite a value)",
    "Illegal character '\\n'": 'a string is not closed on its line (use """...""" for text spanning lines)',
}


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a TOML file, turning every way that can fail into a ConfigError."""
    name = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ConfigError("", f"cannot read the file: {exc.strerror or exc}", file=name) from exc
    try:
        # utf-8-sig: a file saved by Windows Notepad starts with a BOM; accept it.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError("", f"not UTF-8 text (byte 0x{raw[exc.start]:02x})", file=name, line=line) from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(exc, name, text) from exc


def _toml_error(exc: tomllib.TOMLDecodeError, name: str, text: str) -> ConfigError:
    match = _TOML_AT.match(str(exc))
    if match is None:
        return ConfigError("", f"invalid TOML: {exc}", file=name)
    msg = _TOML_HINTS.get(match["msg"], match["msg"])
    msg = f"invalid TOML: {msg[:1].lower()}{msg[1:]}"
    if match["line"] is None:  # "at end of document"
        return ConfigError("", msg, file=name, line=text.count("\n") + 1)
    return ConfigError("", msg, file=name, line=int(match["line"]), column=int(match["col"]))


def load_toml(
    path: str | os.PathLike[str],
    root_type: type[T],
    *,
    complete: Callable[[T], T] | None = None,
    validate: Callable[[T], None] | None = None,
) -> T:
    """Read a TOML file into ``root_type``; errors name the file as ``path`` was given."""
    return convert_document(read_toml(path), root_type, os.fspath(path), complete=complete, validate=validate)


# ---------------------------------------------------------------- converting

_FIELD_IN_REASON = re.compile(r"^Object (?P<kind>contains unknown|missing required) field `(?P<f>[^`]*)`$")


def convert_document(
    doc: Any,
    root_type: type[T],
    source_name: str,
    *,
    complete: Callable[[T], T] | None = None,
    validate: Callable[[T], None] | None = None,
) -> T:
    """Turn a parsed document (TOML or JSON) into ``root_type``, complete it, validate it.

    ``source_name`` is what errors name as the file: a path, or for a pushed
    config something like ``mqtt:coldgate/v1/site/gw/config``.  ``complete``
    fills in defaults that depend on other keys (it cannot fail); ``validate``
    checks rules spanning several keys and raises ConfigError naming the key to
    fix, without knowing the file name (added here).
    """
    try:
        config = msgspec.convert(doc, type=root_type, str_keys=True)
    except msgspec.ValidationError as exc:
        raise error_from_msgspec(exc, doc, root_type, source_name) from None
    if complete is not None:
        config = complete(config)
    if validate is not None:
        try:
            validate(config)
        except ConfigError as exc:
            raise (exc if exc.file else exc.in_file(source_name)) from None
    return config


def error_from_msgspec(
    exc: msgspec.ValidationError, doc: Any, root_type: Any, source_name: str
) -> ConfigError:
    """Re-word a msgspec validation error using the document and the declared type."""
    path, reason = split_msgspec_error(exc)
    if path == "$":  # msgspec omits the path for fields of the root table
        field = _FIELD_IN_REASON.match(reason)
        if field is not None:
            path = f"$.{field['f']}"
    segments = cd.parse_path(path)
    if segments is None:
        return ConfigError("", reason, file=source_name)
    segments = _resolve_dict_keys(root_type, doc, segments)
    key = cd.format_key(segments)
    if reason.startswith("Object contains unknown field"):
        return ConfigError(key, _unknown_key_message(root_type, doc, segments), file=source_name)
    found = cd.render_value(cd.lookup(doc, segments))
    expected = cd.expected_at(root_type, segments, doc)
    return ConfigError(key, expected=expected, found=found, file=source_name)


def _resolve_dict_keys(root_type: Any, doc: Any, segments: list[cd.Segment]) -> list[cd.Segment]:
    while cd.ANY_KEY in segments:
        at = segments.index(cd.ANY_KEY)
        key = cd.first_failing_key(root_type, doc, segments[:at], segments[at + 1 :])
        if key is None:
            break
        segments = [*segments[:at], key, *segments[at + 1 :]]
    return segments


def _unknown_key_message(root_type: Any, doc: Any, segments: list[cd.Segment]) -> str:
    name = str(segments[-1])
    table = cd.table_at(root_type, segments[:-1], doc)
    if table is None:
        return "unknown key"
    keys = [f.encode_name for f in table.fields]
    if table.tag_field:
        keys.insert(0, table.tag_field)
    where = f' for {table.tag_field} = "{table.tag}"' if table.tag_field else ""
    if f"{name}_file" in keys:
        return (
            f"unknown key{where}; did you mean `{name}_file`? "
            "(secrets are read from a file readable only by the service, never written inline)"
        )
    close = difflib.get_close_matches(name, keys, n=1, cutoff=0.6)
    if close:
        return f"unknown key{where}; did you mean `{close[0]}`?"
    listed = ", ".join(keys)
    return f"unknown key{where}; valid keys here: {listed}"
