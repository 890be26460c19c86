"""``coldgate gateway status``: the gateway's state from the Pi itself, with no network.

An engineer at a site whose uplink is down still needs to know how much is
buffered, since when, and whether the alarm sounds.  This reads only local
state: the running gateway over its control socket (its status, the same
``contract.Status`` the heartbeat carries, and the local detail beside it),
the outbox file (read-only: depth, oldest unacknowledged item, counters), the
last heartbeat the gateway wrote, and the down-link documents in force.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import msgspec

from coldgate.contract.codec import encode
from coldgate.contract.uplink import Status
from coldgate.gateway.buffer.outbox_db import OutboxDb
from coldgate.gateway.clock import Stamp
from coldgate.gateway.config import GatewayConfig
from coldgate.gateway.control import ControlRequest, ask, socket_path

HEARTBEAT_FILE = "status.json"


def write_heartbeat(data_dir: str | os.PathLike[str], status: Status) -> None:
    """Keep the last heartbeat on disk (atomically), for ``coldgate gateway status`` without network."""
    directory = Path(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".status-", delete=False) as tmp:
        try:
            tmp.write(encode(status))
            tmp.flush()
            os.replace(tmp.name, directory / HEARTBEAT_FILE)
        except BaseException:
            with contextlib.suppress(OSError):  # a full card must not fill up with half-written copies
                os.unlink(tmp.name)
            raise


def heartbeat_stamp(data_dir: str | os.PathLike[str]) -> Stamp | None:
    """When the last heartbeat kept on disk was taken (wall, boot, monotonic); None if there is none.

    A sign that the gateway was alive then, read at start before the new
    process writes its own (``gateway.restart_gap``).  A missing, torn or
    foreign file is no evidence, not an error.
    """
    try:
        status = msgspec.json.decode((Path(data_dir) / HEARTBEAT_FILE).read_bytes(), type=Status)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None
    if status.clock is None or status.clock.mono is None:
        return None  # a last will: registered at connect, not a sign of life at its ``ts``
    return Stamp(wall_ms=status.ts, mono_ms=status.clock.mono, boot=status.boot, synced=status.clock.synced)


def local_status(config: GatewayConfig) -> dict[str, Any]:
    data_dir = Path(config.gateway.data_dir)
    report: dict[str, Any] = {"gateway": config.gateway.id, "site": config.gateway.site}
    try:
        live = ask(socket_path(data_dir), ControlRequest(action="status"), timeout=3.0)
        report["running"] = True
        report["status"] = live.data.get("status")
        report["detail"] = live.data.get("detail", {})
    except (ConnectionError, OSError) as exc:
        report["running"] = False
        report["live_error"] = str(exc)
    report["outbox"] = _outbox(Path(config.outbox.path or data_dir / "outbox.sqlite3"))
    heartbeat = data_dir / HEARTBEAT_FILE
    if heartbeat.exists():
        with contextlib.suppress(OSError, ValueError):
            report["last_heartbeat"] = json.loads(heartbeat.read_bytes())
    documents = {}
    for path in sorted((data_dir / "downlink").glob("*.json")):
        with contextlib.suppress(OSError, ValueError, msgspec.DecodeError):
            documents[path.stem] = json.loads(path.read_bytes()).get("version")
    report["documents"] = documents
    return report


def _outbox(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"path": str(path), "error": "no outbox file yet"}
    try:
        db = OutboxDb.open_reader(path)
    except (sqlite3.Error, OSError, ValueError) as exc:
        return {"path": str(path), "error": f"cannot read: {exc}"}
    try:
        meta = db.read_meta()
        return {
            "path": str(path),
            "stream": meta.stream,
            "depth": meta.item_count,
            "bytes": meta.item_bytes,
            "last_seq": meta.next_seq - 1,
            "acked_seq": meta.acked_seq,
            "oldest_unacked_ts": db.oldest_ts(meta.acked_seq),
        }
    finally:
        db.close()


def render(report: dict[str, Any]) -> str:
    """The report for a person at a terminal."""
    lines = [
        f"gateway {report['gateway']} at site {report['site']}: "
        + ("running" if report["running"] else "not running")
    ]
    outbox = report["outbox"]
    if "error" in outbox:
        lines.append(f"outbox {outbox['path']}: {outbox['error']}")
    else:
        lines.append(
            f"outbox: {outbox['depth']} item(s) waiting for the cloud, last seq {outbox['last_seq']},"
            f" acknowledged up to {outbox['acked_seq']},"
            f" oldest unacknowledged ts {outbox['oldest_unacked_ts']}"
        )
    if report.get("status"):
        lines += _live_lines(msgspec.convert(report["status"], Status), report.get("detail", {}))
    heartbeat = report.get("last_heartbeat")
    if heartbeat:
        lines.append(
            f"last heartbeat: ts {heartbeat.get('ts')}, clock synced: "
            f"{(heartbeat.get('clock') or {}).get('synced')}"
        )
    if report["documents"]:
        lines.append("documents in force: " + ", ".join(f"{k} v{v}" for k, v in report["documents"].items()))
    return "\n".join(lines)


def _live_lines(status: Status, detail: dict[str, Any]) -> list[str]:
    lines = []
    alarm = status.alarm
    if alarm is not None:
        state = "SOUNDING" if alarm.sounding else ("active (muted)" if alarm.active else "quiet")
        lines.append(f"alarm: {state}; open alerts: {', '.join(alarm.alerts) or 'none'}")
    sensors = detail.get("sensors", {})
    for sensor in status.sensors:
        in_excursion = sensors.get(sensor.id, {}).get("in_excursion")
        lines.append(
            f"  {sensor.id}: {'online' if sensor.online else 'OFFLINE'},"
            f" served {sensor.served or 0}/{sensor.scheduled or 0} polls"
            + (", IN EXCURSION" if in_excursion else "")
            + (f", last error: {sensor.error}" if sensor.error else "")
        )
    return lines
