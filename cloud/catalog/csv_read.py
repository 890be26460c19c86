"""Reading an import file: UTF-8 CSV with a header row, every problem named by line, column and value.

Pure (no database), so the rules can be checked on their own and timed apart from the writes.  A
file imports whole or not at all, and its sender should fix every mistake in one go: so problems
are collected, not raised at the first (``Problems``, capped at ``MAX_SHOWN``, counting the rest),
and one ``ImportRefused`` carries them all.  Lines are numbered as a spreadsheet numbers its rows:
the header is line 1, the first record line 2 (a record with a quoted line break is one row).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field

from coldgate.cloud.identity.users import UserInputError

__all__ = ["MAX_SHOWN", "ImportRefused", "Problems", "Row", "RowError", "read_rows"]

MAX_SHOWN = 100
#: A cell longer than this is no catalog value (the longest field is a product's 200-character name).
MAX_CELL = 1000


@dataclass(frozen=True, slots=True)
class RowError:
    """One bad value: the line (1-based, header = 1), its column, the value as the file has it, why."""

    line: int
    column: str
    value: str
    why: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column} = {self.value!r}: {self.why}"


@dataclass(slots=True)
class Problems:
    """The problems found so far: the first ``MAX_SHOWN`` kept, the rest counted."""

    shown: list[RowError] = field(default_factory=list)
    more: int = 0

    def add(self, line: int, column: str, value: object, why: str) -> None:
        if len(self.shown) < MAX_SHOWN:
            self.shown.append(RowError(line, column, "" if value is None else str(value)[:200], why))
        else:
            self.more += 1

    def refusal(self, kind: str) -> ImportRefused | None:
        ordered = sorted(self.shown, key=lambda e: e.line)  # checks across rows find theirs last
        return ImportRefused(kind, ordered, self.more) if self.shown else None

    def __bool__(self) -> bool:
        return bool(self.shown)


class ImportRefused(UserInputError):
    """The file was refused, nothing imported: every row error (the first ``MAX_SHOWN``, and how many
    more), or one problem with the file as a whole (line 0 when it is no line's)."""

    def __init__(self, kind: str, errors: list[RowError], more: int = 0) -> None:
        summary = "; ".join(str(e) for e in errors[:3])
        count = len(errors) + more
        super().__init__("file", f"{kind} file refused, nothing imported: {count} problem(s): {summary}"
                         + (" ..." if count > 3 else ""))  # fmt: skip
        self.errors = errors
        self.more = more


@dataclass(frozen=True, slots=True)
class Row:
    """A record: its line and its cells by column (an empty cell is None)."""

    line: int
    cells: dict[str, str | None]


def _decoded(kind: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")  # a spreadsheet's byte-order mark is no part of the header
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        why = f"byte {exc.start} (0x{data[exc.start]:02x}) is not UTF-8: save the file as UTF-8 CSV"
        raise ImportRefused(kind, [RowError(line, "-", "", why)]) from None


def _header(kind: str, names: list[str], required: tuple[str, ...], optional: tuple[str, ...]) -> list[str]:
    columns = [n.strip() for n in names]
    problems = Problems()
    for n, name in enumerate(columns):
        if name not in required and name not in optional:
            problems.add(1, name or f"#{n + 1}", name,
                         f"no such column (columns: {', '.join(required + optional)})")  # fmt: skip
        elif columns.index(name) != n:
            problems.add(1, name, name, "the column appears twice")
    for name in required:
        if name not in columns:
            problems.add(1, name, "", "the header lacks this column")
    refused = problems.refusal(kind)
    if refused is not None:
        raise refused
    return columns


def read_rows(
    kind: str, data: bytes, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> tuple[list[Row], Problems]:
    """The file's records under its header, and the problems of their shape (a record with too many or
    too few cells, an over-long cell).  An undecodable file, one that is no CSV or has a wrong header is
    refused at once (``ImportRefused``): no row of it can be read reliably."""
    reader = csv.reader(io.StringIO(_decoded(kind, data), newline=""), strict=True)
    records: Iterator[list[str]] = iter(reader)
    try:
        names = next(records, None)
        if names is None:
            raise ImportRefused(kind, [RowError(1, "-", "", "the file is empty: a header row comes first")])
        columns = _header(kind, names, required, optional)
        rows: list[Row] = []
        problems = Problems()
        width = len(columns)
        for line, record in enumerate(records, start=2):
            if not record or (record == [""] * len(record) and len(record) <= 1):
                continue  # a blank line
            if len(record) != width:
                problems.add(line, "-", ",".join(record)[:200],
                             f"{len(record)} cells where the header has {width}")  # fmt: skip
                continue
            cells: dict[str, str | None] = {}
            for name, cell in zip(columns, record, strict=True):
                if len(cell) > MAX_CELL:
                    problems.add(line, name, cell, f"longer than {MAX_CELL} characters")
                cells[name] = cell if cell != "" else None
            rows.append(Row(line, cells))
    except csv.Error as exc:
        raise ImportRefused(kind, [RowError(reader.line_num, "-", "", f"not CSV: {exc}")]) from None
    if not rows and not problems:
        raise ImportRefused(kind, [RowError(2, "-", "", "the file has a header but no rows")])
    return rows, problems
