"""Python's cyclic garbage collector paused around work that makes many small objects in one go.

Binding a batch and folding a lot's custody chain each make tens of thousands of small objects (tuples,
rows, bindings), none in a cycle.  Each full collection they trigger walks every tracked object of the
process (the ORM's metadata, the caches, the web app), and in a long-running cloud process that was
half the time of a 10,000-case lot's chain and a third of a binding batch (measured, bench/binding.py).
Reference counting frees the objects as usual; the collector runs again afterwards.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["collector_paused"]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The collector off inside the block (for every thread of the process: keep the block short),
    back on after it if it was on before."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
