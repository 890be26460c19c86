"""GS1's EPCIS 2.0 JSON Schema as the tests check documents against it: draft-07, with the ``uri`` and
``date-time`` formats checked too (jsonschema checks no format unless told how)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import jsonschema

from coldgate.cloud.documents.epcis_import import SCHEMA_FILE

__all__ = ["valid"]

_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
_checker = jsonschema.FormatChecker()


@_checker.checks("uri")
def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return (
        bool(parts.scheme) and not re.search(r"\s", value) and (parts.scheme != "https" or bool(parts.netloc))
    )


@_checker.checks("date-time")
def _is_time(value: object) -> bool:
    return not isinstance(value, str) or _TIME.fullmatch(value) is not None


_validator = jsonschema.Draft7Validator(json.loads(SCHEMA_FILE.read_text("utf-8")), format_checker=_checker)


def valid(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` when GS1's schema accepts it; an assertion naming the first five errors otherwise."""
    errors = sorted(_validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
    return document
