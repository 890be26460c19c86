"""Refuse path and query parameters that cannot be text, before any route looks them up.

PostgreSQL's ``text`` cannot hold a NUL character: a ``%00`` in any parameter that
reached a query came back from psycopg as a ``DataError`` and so as a 500, on every
route that looks a string up (issue 12).  Invalid UTF-8 (``%ff``, an encoded
surrogate, Java's overlong ``%C0%80``) never failed: Starlette decodes it with
U+FFFD replacement characters and the route silently looked up a value nobody
sent.  Both are a client's mistake, so both are a 422 in FastAPI's own error shape,
naming the parameter, decided here once for every route rather than by each query.

The check is a dependency placed after ``require_token`` on every router (see
``create_app``), not a middleware: a middleware runs before authentication and
would tell a caller without a token what it thinks of their parameters, where
every other check answers strangers 401 first.  Being a dependency it also runs
after routing, so a path parameter is named from the route's template
(``gateway`` for ``/gateways/{gateway}``).  A path no route matches is a 404 and
never reaches a query, so it is not judged.

Every query parameter is judged, declared or not: one rule is easier to state
than "only those some route reads", and an undeclared one costs nothing to refuse.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

from fastapi import Request
from fastapi.exceptions import RequestValidationError

__all__ = ["refuse_unstorable_text"]

#: Lone surrogates: where ``surrogateescape`` kept a byte that is not UTF-8, and what a server
#: decoding that way would hand a route (no UTF-8 encodes them, so PostgreSQL cannot take them).
_SURROGATE = re.compile("[\ud800-\udfff]")

_NUL = "contains a NUL character (%00), which no parameter may hold"
_NOT_UTF8 = "is not UTF-8 text once percent-decoded (e.g. %ff): escape the value's UTF-8 bytes"
_NAME_NUL = "the parameter name contains a NUL character (%00)"
_NAME_NOT_UTF8 = "the parameter name is not UTF-8 text once percent-decoded (e.g. %ff)"


def refuse_unstorable_text(request: Request) -> None:
    """Raise a 422 listing every path and query parameter that holds a NUL or is not UTF-8 text.

    Each value is judged twice: as the route would see it (NUL, lone surrogates) and
    from the request's raw bytes, since Starlette has already replaced invalid UTF-8
    with U+FFFD by the time a route sees it, indistinguishable from a real U+FFFD.
    """
    errors = [*_path_errors(request), *_query_errors(request)]
    if errors:
        raise RequestValidationError(errors)


def _error(where: str, name: str, message: str, value: str) -> dict[str, Any]:
    """One entry shaped like FastAPI's, echoing the value only as the route would have seen it."""
    return {
        "type": "value_error",
        "loc": (where, _printable(name)),
        "msg": message,
        "input": _printable(value),
    }


def _printable(text: str) -> str:
    """``text`` with lone surrogates replaced: the JSON answer is UTF-8 and cannot carry them."""
    return _SURROGATE.sub("\ufffd", text)


def _not_utf8(value: str, raw: str) -> bool:
    """True if ``value`` (as the route sees it) or ``raw`` (the same, decoded with
    ``surrogateescape``) holds a lone surrogate: bytes that were not UTF-8."""
    return bool(_SURROGATE.search(value) or _SURROGATE.search(raw))


def _path_errors(request: Request) -> list[dict[str, Any]]:
    params: dict[str, Any] = request.path_params
    if not params:
        return []
    raw = _raw_path_params(request)
    errors = []
    for name, value in params.items():
        if not isinstance(value, str):  # int or float convertors: digits only
            continue
        if "\x00" in value:
            errors.append(_error("path", name, _NUL, value))
        elif _not_utf8(value, raw.get(name, "")):
            errors.append(_error("path", name, _NOT_UTF8, value))
    return errors


def _raw_path_params(request: Request) -> dict[str, str]:
    """The path parameters decoded from the raw path with invalid bytes kept as lone surrogates.

    The route's own pattern is matched against that decoding: it differs from the
    server's only where the server put a U+FFFD, which a parameter's ``[^/]+`` takes
    just as well, so the groups line up with ``request.path_params``.  Empty when the
    server sent no ``raw_path`` (it is optional in ASGI) or the pattern does not
    match (a ``root_path`` in front, say); the decoded values are still judged.
    """
    raw_path = request.scope.get("raw_path")
    route = request.scope.get("route")
    pattern = getattr(route, "path_regex", None)
    if not isinstance(raw_path, bytes) or pattern is None:
        return {}
    decoded = unquote_to_bytes(raw_path).decode("utf-8", "surrogateescape")
    match = pattern.match(decoded)
    root = request.scope.get("root_path", "")
    if match is None and root and decoded.startswith(root):
        match = pattern.match(decoded[len(root) :])
    return {k: v for k, v in match.groupdict().items() if isinstance(v, str)} if match else {}


def _query_errors(request: Request) -> list[dict[str, Any]]:
    """Judged from the raw query string, parsed as Starlette parses it, pair by pair.

    Starlette decodes the raw string as latin-1 and percent-decodes with U+FFFD for
    invalid UTF-8; decoding the same string with ``surrogateescape`` instead yields
    the same pairs in the same order, with lone surrogates where bytes were invalid.
    """
    query = request.scope.get("query_string", b"")
    if not query:
        return []
    text = query.decode("latin-1")
    seen = parse_qsl(text, keep_blank_values=True)
    exact = parse_qsl(text, keep_blank_values=True, errors="surrogateescape")
    errors = []
    for (name, value), (raw_name, raw_value) in zip(seen, exact, strict=True):
        if "\x00" in name:
            errors.append(_error("query", name, _NAME_NUL, value))
        elif _not_utf8(name, raw_name):
            errors.append(_error("query", name, _NAME_NOT_UTF8, value))
        elif "\x00" in value:
            errors.append(_error("query", name, _NUL, value))
        elif _not_utf8(value, raw_value):
            errors.append(_error("query", name, _NOT_UTF8, value))
    return errors
