"""A private VictoriaMetrics server as a child process: the stand-in for InfluxDB.

Why VictoriaMetrics: no InfluxDB 2.x/3.x server is installable here (Debian's
influxdb 1.6 lacks ``/api/v2/write``), while Debian's ``victoria-metrics``
accepts influxdb-client's ``/api/v2/write`` line protocol.  It stores
``measurement`` + ``field`` as one metric (``coldgate_reading_value``), tags as
labels, ignores the ``bucket`` and ``org`` parameters (only a ``db`` parameter
would become a label), and answers malformed lines with 204 after skipping
them, so a test must read the points back to know they arrived.  It keeps a
re-sent point as a second sample at the same timestamp (InfluxDB overwrites).
Flux queries cannot be tested against it.

Flags that matter: ``-search.latencyOffset=0s`` (otherwise points younger than
30 s are hidden from queries), ``-retentionPeriod=100y`` (the default of one
month silently drops older timestamps); after writing, ``force_flush()``
(``/internal/force_flush``) makes fresh points visible to ``/api/v1/export``.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.parse import urlencode

from tests.rig.ports import end_server, free_port

BINARY_NAMES = ("victoria-metrics", "/usr/bin/victoria-metrics")


def find_binary() -> str | None:
    """The server binary, or None when the ``victoria-metrics`` package is not installed."""
    for name in BINARY_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


class VictoriaMetrics:
    """One private server: fixed port and data directory across restarts, so a test
    can stop it (an Influx outage) and start it again with the same data."""

    def __init__(self, workdir: Path, *, port: int | None = None) -> None:
        binary = find_binary()
        if binary is None:
            raise RuntimeError("victoria-metrics is not installed: apt-get install victoria-metrics")
        self.binary = binary
        self.workdir = workdir
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.data_dir = workdir / "data"
        self.log_path = workdir / "victoria-metrics.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 15.0) -> None:
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [
                self.binary,
                f"-storageDataPath={self.data_dir}",
                f"-httpListenAddr={self.host}:{self.port}",
                "-search.latencyOffset=0s",
                "-retentionPeriod=100y",
                "-loggerLevel=WARN",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not self._healthy():
            if self._proc.poll() is not None:  # e.g. the port was taken between free_port() and bind
                self._proc = None
                raise RuntimeError(f"victoria-metrics exited at start: {self._log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"victoria-metrics did not become healthy: {self._log_tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """A clean shutdown (SIGTERM): the server flushes its data to disk first."""
        self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        self._end(signal.SIGKILL, 10.0)

    def _end(self, sig: signal.Signals, timeout: float) -> None:
        proc, self._proc = self._proc, None
        end_server(proc, sig, timeout, self.host, self.port)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                return bool(response.status == 200)
        except (URLError, OSError):
            return False

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    # ---------------------------------------------------------------- reading back

    def force_flush(self) -> None:
        """Make every point accepted so far visible to queries (they sit in memory until then)."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10) as response:
            response.read()

    def export(self, match: str) -> list[dict[str, Any]]:
        """Every series matching the selector, as ``/api/v1/export`` gives them:
        ``{"metric": {labels}, "values": [...], "timestamps": [ms, ...]}``, one per series."""
        self.force_flush()
        # The default ``end`` is now, which would hide points stamped by a gateway clock running
        # ahead; VictoriaMetrics refuses points more than 2 days ahead anyway.
        query = urlencode({"match[]": match, "start": "0", "end": str(int(time.time()) + 3 * 86400)})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=10) as response:
            body = response.read().decode()
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    def samples(self, match: str) -> dict[tuple[tuple[str, str], ...], dict[int, float]]:
        """``export`` as {sorted labels (with __name__): {timestamp ms: value}}."""
        out: dict[tuple[tuple[str, str], ...], dict[int, float]] = {}
        for series in self.export(match):
            key = tuple(sorted(series["metric"].items()))
            points = out.setdefault(key, {})
            points.update(zip(series["timestamps"], series["values"], strict=True))
        return out
