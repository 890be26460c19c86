"""A private Mosquitto broker per test session, as a child process.

Why not the machine's broker on 1883: tests must not see each other's retained
messages or persistent sessions, and the store-and-forward tests stop, kill and
restart the broker (with and without persistence) mid-stream.  The broker runs
in the foreground (no ``-d``) with its own config and data directory; as root
it would drop to user ``mosquitto`` and then fail to write its data directory,
so the config says ``user`` = the current user (see LIBRARY-NOTES.md).
"""

from __future__ import annotations

import getpass
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.rig.ports import end_server, free_port, wait_for_port


class MosquittoBroker:
    """One private broker: fixed port and data directory across restarts."""

    def __init__(self, workdir: Path, *, persistence: bool = True, port: int | None = None) -> None:
        self.workdir = workdir
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.persistence = persistence
        self.data_dir = workdir / "data"
        self.conf_path = workdir / "mosquitto.conf"
        self.log_path = workdir / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise RuntimeError("mosquitto is not installed: apt-get install mosquitto (.ci/run does)")
        self.binary = binary

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            f"user {getpass.getuser()}",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.data_dir}/",
            # Save only on shutdown unless told otherwise; crash tests use persistence=False.
            "autosave_interval 0",
            "max_queued_messages 0",
            "max_inflight_messages 0",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        self.conf_path.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        if self.running:
            return
        self._write_config()
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 15
        while True:
            if self._proc.poll() is not None:  # e.g. the port was taken between free_port() and bind
                self._proc = None
                raise RuntimeError(f"mosquitto exited at start: {self.log_path.read_text()[-2000:]}")
            try:
                wait_for_port(self.host, self.port, timeout=0.2)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    self.stop()
                    log_tail = self.log_path.read_text()[-2000:]
                    raise RuntimeError(f"mosquitto did not start: {log_tail}") from None

    def stop(self, timeout: float = 10.0) -> None:
        """A clean shutdown: the broker saves its persistence file first."""
        self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """``kill -9``: nothing saved, in-flight state gone."""
        self._end(signal.SIGKILL, 10.0)

    def restart(self, *, persistence: bool | None = None) -> None:
        self.stop()
        if persistence is not None:
            self.persistence = persistence
            if not persistence:
                shutil.rmtree(self.data_dir, ignore_errors=True)
        self.start()

    def _end(self, sig: signal.Signals, timeout: float) -> None:
        proc, self._proc = self._proc, None
        end_server(proc, sig, timeout, self.host, self.port)
