"""The edge benchmarks' plumbing, and what keeps a polling gateway small; no timing here.

The figures themselves are printed by ``python -m bench.edge_sensing`` and ``python -m bench.edge_site``
(issue 18); these tests only make sure the benchmarks still start and measure what they say.
"""

from __future__ import annotations

import subprocess
import sys
from itertools import islice
from pathlib import Path

import pytest

from bench import edge_sensing, edge_site
from coldgate.simulator.llrp.messages import unpack_ro_access_report

ROOT = Path(__file__).resolve().parents[1]


def _imports_after(code: str) -> set[str]:
    """Top-level modules imported by a fresh interpreter after running ``code``."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=ROOT)
    return set(out.stdout.split())


def test_the_gateway_service_imports_no_cloud_library() -> None:
    loaded = _imports_after("import coldgate.gateway.service, coldgate.gateway.cli")
    assert loaded.isdisjoint({"sqlalchemy", "fastapi", "uvicorn", "pydantic", "psycopg", "jinja2", "alembic"})


def test_a_gateway_without_scanners_never_loads_the_barcode_parsers() -> None:
    """biip's GS1 tables cost a Pi 17 MB of RSS; only a gateway with a scanner pays them."""
    build = (
        "from bench.edge_sensing import site_config\n"
        "from coldgate.gateway.app import GatewayApp\n"
        "app = GatewayApp(site_config(4, 1.0, 1502, 1), sink=type('S', (), {'put': lambda s, i: None})())\n"
        "app.status_parts()\n"
    )
    assert "biip" not in _imports_after(build)


def test_a_gateway_with_a_scanner_builds_its_source(tmp_path: Path) -> None:
    from coldgate.gateway.app import build_sources
    from coldgate.gateway.clock import SystemClock

    spec = {
        "units": 2, "interval_s": 1.0, "modbus_port": 1502, "data_dir": str(tmp_path), "broker": "mqtt://x:1",
        "commit_interval_ms": 20, "llrp_port": 5084, "scanner": "/dev/null",
    }  # fmt: skip
    config = edge_site.gateway_config(spec)
    kinds = [type(source).__name__ for source in build_sources(config, SystemClock())]
    assert kinds == ["ModbusLinePoller", "ModbusLinePoller", "LlrpReaderSource", "ScannerSource"]
    assert config.outbox.path == str(tmp_path / "outbox.sqlite3")
    assert config.outbox.commit_interval_ms == 20


def test_edge_sensing_arguments() -> None:
    args = edge_sensing.parse_args([])
    assert (args.units, args.interval, args.seconds, args.rounds, args.floor_child) == (
        50,
        0.1,
        60.0,
        1,
        None,
    )
    assert edge_sensing.parse_args(["--rounds", "3", "--seconds", "5"]).rounds == 3


def test_edge_site_arguments() -> None:
    args = edge_site.parse_args([])
    assert (args.window, args.units, args.reads_per_s, args.sensors_only) == (60.0, 50, 1000.0, False)
    assert edge_site.parse_args(["--window", "10", "--sensors-only"]).sensors_only


def test_the_door_sends_pallets_in_reports_of_many_reads() -> None:
    door = edge_site.DoorReads(1000.0)
    reports = [unpack_ro_access_report(body) for _, body in islice(iter(door), 40)]
    reads = sum(len(report.tags) for report in reports)
    assert reads == door.reads > 40  # several reads a report, counted as sent
    assert all(0.0 <= delay <= 1.0 for delay, _ in islice(iter(edge_site.DoorReads(1000.0)), 5))


@pytest.mark.parametrize("values, expected", [([], None), ([3.0], 3.0), ([1.0, 2.0, 3.0, 4.0, 5.0], 3.0)])
def test_percentile(values: list[float], expected: float | None) -> None:
    result = edge_site.percentile(values, 50)
    assert (result != result) if expected is None else result == expected
