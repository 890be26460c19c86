"""A simulated device served on its own event loop in a daemon thread, for synchronous code.

Tests, the demo's launcher and benchmarks want a farm or a reader that is
simply *there* while they work; leaving the ``with`` block must close every
port before returning, and a failure on the device's loop must surface in the
thread that starts or stops it, not vanish with the thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self

__all__ = ["LoopThread"]


class LoopThread:
    """Subclasses say how to serve (``_serve``, which returns once serving) and how to stop (``_close``,
    also run when ``_serve`` failed half-way); ``what`` names the device in errors."""

    what = "simulator"

    def __init__(self, name: str, start_timeout: float = 10.0) -> None:
        self._start_timeout = start_timeout
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    async def _serve(self) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # handed to the thread that starts or stops the device
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self._serve()
            self._ready.set()
            await self._stop.wait()
        finally:
            await self._close()

    def call(self, fn: Callable[..., object], *args: object) -> None:
        """Run ``fn(*args)`` on the device's loop (fault hooks from another thread)."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(fn, *args)

    def start(self) -> Self:
        self._thread.start()
        if not self._ready.wait(self._start_timeout):
            raise TimeoutError(f"{self.what} did not start within {self._start_timeout}s")
        if self._error is not None:
            self._thread.join()
            error, self._error = self._error, None
            raise RuntimeError(f"{self.what} failed to start: {error}") from error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving; on return every port the device opened is closed."""
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"{self.what} did not stop within {timeout}s")
        if self._error is not None:
            error, self._error = self._error, None
            raise RuntimeError(f"{self.what} failed while serving: {error}") from error

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
