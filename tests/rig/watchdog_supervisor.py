"""A stand-in for systemd's ``Type=notify`` + ``WatchdogSec`` handling, for one service.

There is no systemd (as PID 1) in the test container, so this plays its part
as ``deploy/systemd/coldgate-gateway.service`` configures it:

- binds a unix datagram socket and starts the command with ``NOTIFY_SOCKET``
  and ``WATCHDOG_USEC`` set (systemd also sets ``WATCHDOG_PID``; the pid is not
  known before the fork here, so it is left out);
- takes messages only from the main process (``NotifyAccess=main``: the
  sender's pid comes with ``SO_PASSCRED``);
- counts the start as done at READY=1, and kills a start that takes longer than
  ``start_timeout_s`` (``TimeoutStartSec``);
- after READY=1, kills the process with SIGABRT (``WatchdogSignal``'s default)
  when no WATCHDOG=1 came for ``watchdog_s``, then SIGKILL if it lingers
  (``TimeoutAbortSec``), and starts it again after ``restart_s``
  (``Restart=on-failure``, which covers the watchdog, and ``RestartSec``); a
  process that exits non-zero on its own is restarted the same way.

``before_restart(run)`` is called between a kill and the next start, with the
old process gone: the moment a test inspects what the dead process left.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Run:
    """One start of the service and what it said."""

    number: int
    pid: int
    started: float
    ready_at: float | None = None
    pets: int = 0
    last_pet: float | None = None
    statuses: list[str] = field(default_factory=list)
    stopping: bool = False
    ended: str | None = None  # "watchdog", "start timeout", "exit N", "stopped"


class WatchdogSupervisor:
    """``with WatchdogSupervisor(argv, workdir, watchdog_s=2) as sup:``; state is read from any thread."""

    def __init__(
        self,
        argv: Sequence[str],
        workdir: Path,
        *,
        env: Mapping[str, str] | None = None,
        watchdog_s: float = 2.0,
        start_timeout_s: float = 30.0,
        restart_s: float = 0.5,
        abort_timeout_s: float = 5.0,
        cwd: Path | None = None,
        before_restart: Callable[[Run], None] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.env = dict(os.environ if env is None else env)
        self.watchdog_s = watchdog_s
        self.start_timeout_s = start_timeout_s
        self.restart_s = restart_s
        self.abort_timeout_s = abort_timeout_s
        self.cwd = cwd
        self.before_restart = before_restart
        self.socket_path = workdir / "notify.sock"
        self.log_path = workdir / "service.log"
        self.runs: list[Run] = []
        self.ignored: list[tuple[int, str]] = []  # (pid, message) from processes other than the main one
        self._lock = threading.Lock()
        self._stop = threading.Event()  # the receiver's end
        self._stopping = threading.Event()  # the supervisor's end: ``stop`` was called
        self._process: subprocess.Popen[bytes] | None = None
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._sock.bind(str(self.socket_path))
        self._sock.settimeout(0.05)
        self._threads = [
            threading.Thread(target=self._supervise, name="supervisor", daemon=True),
            threading.Thread(target=self._receive, name="notify-socket", daemon=True),
        ]

    # -- running -------------------------------------------------------------------------------------

    def __enter__(self) -> WatchdogSupervisor:
        self._start()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM the service (``systemctl stop``) and wait; its exit code."""
        self._stopping.set()  # no more restarts; the socket still listens for STOPPING=1
        supervisor, receiver = self._threads
        if supervisor.is_alive():
            supervisor.join(15)
        code = None
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait(10)
            time.sleep(0.1)  # let the receiver take what was sent last
            with self._lock:
                self.runs[-1].ended = "stopped"
        self._stop.set()
        if receiver.is_alive():
            receiver.join(5)
        self._sock.close()
        self.socket_path.unlink(missing_ok=True)
        return code

    def _start(self) -> None:
        env = {
            **self.env,
            "NOTIFY_SOCKET": str(self.socket_path),
            "WATCHDOG_USEC": str(int(self.watchdog_s * 1_000_000)),
        }
        with self.log_path.open("ab") as log:
            log.write(f"--- start {len(self.runs) + 1}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                self.argv,
                env=env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_no_core_dump,
            )
        with self._lock:
            self.runs.append(Run(len(self.runs) + 1, self._process.pid, time.monotonic()))

    def _receive(self) -> None:
        ucred = struct.calcsize("3i")
        while not self._stop.is_set():
            try:
                data, ancillary, _flags, _addr = self._sock.recvmsg(4096, socket.CMSG_SPACE(ucred))
            except TimeoutError:
                continue
            except OSError:
                return
            pid = None
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", payload[:ucred])[0]
            self._take(pid, data.decode(errors="replace"))

    def _take(self, pid: int | None, message: str) -> None:
        now = time.monotonic()
        with self._lock:
            run = self.runs[-1] if self.runs else None
            if run is None or pid != run.pid or run.ended is not None:
                self.ignored.append((pid or 0, message))
                return
            for line in message.splitlines():
                key, _, value = line.partition("=")
                if key == "READY" and value == "1" and run.ready_at is None:
                    run.ready_at = now
                    run.last_pet = now  # systemd counts the watchdog from the start's end
                elif key == "WATCHDOG" and value == "1":
                    run.pets += 1
                    run.last_pet = now
                elif key == "STATUS":
                    run.statuses.append(value)
                elif key == "STOPPING" and value == "1":
                    run.stopping = True

    def _supervise(self) -> None:
        while not self._stopping.wait(0.05):
            process = self._process
            assert process is not None
            now = time.monotonic()
            with self._lock:
                run = self.runs[-1]
                why = None
                code = process.poll()
                if code is not None:
                    why = f"exit {code}"
                elif run.ready_at is None and now - run.started > self.start_timeout_s:
                    why = "start timeout"
                elif run.last_pet is not None and now - run.last_pet > self.watchdog_s:
                    why = "watchdog"
                if why is None:
                    continue
                run.ended = why
            if code is None:
                self._kill(process)
            elif code == 0:
                return  # Restart=on-failure: a clean exit stays down
            if self.before_restart is not None:
                self.before_restart(run)
            if self._stopping.wait(self.restart_s):
                return
            self._start()

    def _kill(self, process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGABRT)
        try:
            process.wait(self.abort_timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    # -- reading ---------------------------------------------------------------------------------

    def snapshot(self) -> list[Run]:
        with self._lock:
            return [Run(**vars(run)) for run in self.runs]

    def wait_for(self, condition: Callable[[list[Run]], bool], timeout: float, what: str) -> list[Run]:
        """Block until ``condition(runs)``; AssertionError naming ``what`` and the log after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.snapshot()
            if condition(runs):
                return runs
            if time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-4000:]
                raise AssertionError(f"no {what} within {timeout} s; runs: {runs}\n{tail}")
            time.sleep(0.05)


def _no_core_dump() -> None:
    """SIGABRT dumps core by default: not into the test's folder (systemd-coredump would take it)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
