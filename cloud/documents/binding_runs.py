"""The binding job's runs: a batch per transaction until the queue is empty, in the calling process or,
beside ingest on PostgreSQL, in a process of its own.

Why a process of its own: an ingest worker is bound by one core's Python (the GIL), so binding run in a
thread of the same process takes its Python time from ingest, and on a machine whose cores are all busy
any process binding beside ingest takes CPU from it. So the child runs at a lower priority (``nice``
10): binding is catch-up work, a second or two behind the portal, while ingest holds back the gateways'
acknowledgements. ``python -m bench.binding --parts ingest --thread`` (3 rounds, 2026-12-07, 2 cores
shared with PostgreSQL and the broker) measured ingest with binding beside it at 0.98 of ingest without
when the job ran in the niced child, 0.85 in a thread of the worker's process (issue 15's goal: 0.9);
earlier runs with the child not niced gave 0.90 and 1.07. So a cloud process that ingests and binds
(``coldgate cloud run`` with its workers) hands each run to one child process, started with ``spawn``
(the parent has threads: MQTT, the API) when the scheduler starts, since starting it costs a second or
two of a core that a first run would take from ingest. The child keeps its engine and its
:class:`BindingCache` from run to run as the scheduler's thread would; its work is the same
:func:`bind_runs`; the parent waits for it in the scheduler's thread, holding no lock.

SQLite (the embedded default) keeps binding in the scheduler's thread: its one writer at a time would
make two processes queue for the write lock, and the demo's rates are far below where the GIL matters.

The child ignores SIGINT and SIGTERM, which a terminal or a service manager sends to the whole
process group: the parent stops it when the service stops, after its run in progress commits, and a
child whose parent is gone finds its pipe closed and exits.  A child that dies (killed, out of memory) loses
nothing: its open transaction rolls back, the items stay queued, and the next run starts a new child.
"""

from __future__ import annotations

import datetime
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from sqlalchemy import Engine

from coldgate.cloud.db.engine import make_engine
from coldgate.cloud.documents.binding_store import BATCH, BindingCache, bind_pending

__all__ = ["BindingProcess", "bind_runs"]

log = logging.getLogger(__name__)


def bind_runs(engine: Engine, now: Callable[[], datetime.datetime], cache: BindingCache, most: int) -> int:
    """Bind what ingest stored, a batch per transaction, up to ``most`` batches; how many items were
    bound.  A failure is logged and the items wait for the next run (two cloud processes binding one
    item at once: one wins, the other's run fails and finds it bound next time)."""
    total = 0
    try:
        for _ in range(most):
            with engine.begin() as conn:
                found = bind_pending(conn, now(), cache=cache)
            total += found
            if found < BATCH:
                break
    except Exception:
        log.exception("binding run failed after %d items; the next run tries again", total)
    return total


#: The child's engine and cache, by database URL (one child binds for one database).
_CHILD: dict[str, tuple[Engine, BindingCache]] = {}


def _child_init() -> None:
    """Niced (binding is catch-up work; see above). The parent stops the child (``close``, after the run in
    progress commits): Ctrl-C or a service manager's SIGTERM sent to the whole process group must not
    cut the child short with a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.nice(10)


def _child_state(url: str) -> tuple[Engine, BindingCache]:
    if url not in _CHILD:
        _CHILD[url] = (make_engine(url, writer=True, pool_size=1), BindingCache())
    return _CHILD[url]


def _child_ready(url: str) -> None:
    """The child's start: its imports and its engine's first connection, paid before ingest is busy."""
    engine, _ = _child_state(url)
    with engine.connect():
        pass


def _child_run(url: str, now: datetime.datetime, most: int) -> int:
    """One run in the child process; ``now`` is the parent's clock at the run's start."""
    engine, cache = _child_state(url)
    return bind_runs(engine, lambda: now, cache, most)


class BindingProcess:
    """One child process that binds for ``engine``'s database, started at the first :meth:`run`."""

    def __init__(self, engine: Engine) -> None:
        self._url = engine.url.render_as_string(hide_password=False)
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the child now (the scheduler's start, before ingest is busy): starting it costs a
        second or two of a core (a new interpreter importing the cloud), which a first run would
        otherwise take from ingest.  A child that cannot start is logged; the first run tries again."""
        self._call(_child_ready, self._url)

    def run(self, now: datetime.datetime, most: int) -> int:
        """One run in the child (started if need be); how many items it bound.  A child that died is
        replaced at the next run; its items wait for it."""
        found = self._call(_child_run, self._url, now, most)
        return found if isinstance(found, int) else 0

    def _call(self, function: Callable[..., object], *args: object) -> object:
        with self._lock:
            if self._pool is None:
                spawn = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(1, mp_context=spawn, initializer=_child_init)
            pool = self._pool
        try:
            return pool.submit(function, *args).result()
        except Exception as exc:  # the child died, or could not be started: the items wait
            if isinstance(exc, BrokenProcessPool):
                log.error("the binding process died; a new one binds at the next run")
            else:
                log.exception("the binding process could not run; the next run tries again")
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            return None

    @property
    def started(self) -> bool:
        return self._pool is not None

    def close(self) -> None:
        """Stop the child after the run in progress (its transaction commits first)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
