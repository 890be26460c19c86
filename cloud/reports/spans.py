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


def union(spans: Iterable[tuple[int, int]]) -> list[Span]:
    """The spans merged where they overlap or touch, sorted; empty spans dropped.  Plain (start, end)
    pairs are taken too: a lot's 30,000 stays need not each become a :class:`Span` to be merged."""
    ordered = sorted(s for s in spans if s[1] > s[0])
    if not ordered:
        return []
    merged: list[Span] = []
    start, end = ordered[0]
    for s_start, s_end in ordered:
        if s_start <= end:
            if s_end > end:
                end = s_end
        else:
            merged.append(Span(start, end))
            start, end = s_start, s_end
    merged.append(Span(start, end))
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
