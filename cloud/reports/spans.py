"""Time spans as half-open [start, end) epoch-ms intervals, and the three operations the reports need on
sets of them: union, difference and clipping.  Pure.

Written by hand: a dozen lines of sorting and sweeping, which no small, well-kept library offers for
plain integers (``portion`` does it for general intervals, at a cost per span that a lot's 10,000 stays
would feel).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["Span", "clip", "subtract", "total", "union"]


class Span(NamedTuple):
    start: int
    end: int


def union(spans: Iterable[Span]) -> list[Span]:
    """The spans merged where they overlap or touch, sorted; empty spans dropped."""
    merged: list[Span] = []
    for span in sorted(s for s in spans if s.end > s.start):
        if merged and span.start <= merged[-1].end:
            if span.end > merged[-1].end:
                merged[-1] = Span(merged[-1].start, span.end)
        else:
            merged.append(span)
    return merged


def subtract(spans: Iterable[Span], taken: Iterable[Span]) -> list[Span]:
    """What of ``spans`` is not covered by ``taken``, sorted and merged."""
    holes = union(taken)
    left: list[Span] = []
    for span in union(spans):
        start = span.start
        for hole in holes:
            if hole.end <= start:
                continue
            if hole.start >= span.end:
                break
            if hole.start > start:
                left.append(Span(start, hole.start))
            start = max(start, hole.end)
            if start >= span.end:
                break
        if start < span.end:
            left.append(Span(start, span.end))
    return left


def clip(spans: Iterable[Span], start: int, end: int) -> list[Span]:
    """The parts of ``spans`` inside [start, end), sorted and merged."""
    return union(Span(max(s.start, start), min(s.end, end)) for s in spans)


def total(spans: Iterable[Span]) -> int:
    """Milliseconds covered (overlaps counted once)."""
    return sum(s.end - s.start for s in union(spans))
