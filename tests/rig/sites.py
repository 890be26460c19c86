"""Whole gateway configurations for tests that run the gateway as a site would.

One builder for the cold room the app and service tests run: one xy-md02 logger
(unit 1, polled every second, no retries) on a Modbus TCP line ``loggers``, in a
2-8 °C zone with a 2 s alarm delay, and the alarm relay (unit 1, coil 0) on a
second TCP line ``relays``.  The result is the document as it would be read from
``gateway.toml``; ``gateway.config_load.gateway_config_from_document`` checks it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def cold_room_site(
    data_dir: Path,
    logger_port: int,
    relay_port: int,
    *,
    gateway: str = "gw-test",
    site: str = "site-test",
    zone: str = "cold-room-1",
    hysteresis: float | None = None,
    min_severity: str | None = None,
    **sections: Any,
) -> dict[str, Any]:
    """The cold room as a config document; ``sections`` add top-level sections (``uplink``, ``outbox``...)
    or replace the ones built here."""
    temperature_class: dict[str, Any] = {"name": "2-8C", "low": 2.0, "high": 8.0, "alarm_delay_s": 2.0}
    if hysteresis is not None:
        temperature_class["hysteresis"] = hysteresis
    alarm: dict[str, Any] = {"relay": {"line": "relays", "unit": 1, "coil": 0}}
    if min_severity is not None:
        alarm = {"min_severity": min_severity, **alarm}
    document: dict[str, Any] = {
        "gateway": {"id": gateway, "site": site, "data_dir": str(data_dir)},
        "modbus_lines": [
            {"id": "loggers", "transport": "tcp", "host": "127.0.0.1", "port": logger_port, "timeout_s": 0.5},
            {"id": "relays", "transport": "tcp", "host": "127.0.0.1", "port": relay_port, "timeout_s": 0.5},
        ],
        "temperature_classes": [temperature_class],
        "zones": [{"id": zone, "temperature_class": "2-8C", "recording_interval_s": 60}],
        "sensors": [
            {
                "source": "modbus",
                "id": "cr1-t1",
                "line": "loggers",
                "unit": 1,
                "profile": "xy-md02",
                "interval_s": 1,
                "retries": 0,
                "zone": zone,
            }
        ],
        "alarm": alarm,
    }
    document.update(sections)
    return document
