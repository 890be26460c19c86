"""The REST API on both dialects: auth, every endpoint's folding and filtering, errors, OpenAPI."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("sqlalchemy", reason="cloud API tests need the [cloud] extra")
pytest.importorskip("fastapi", reason="cloud API tests need the [cloud] extra")

import msgspec
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, event, insert

from coldgate.cloud.api import ApiTokens, access, create_app, load_tokens, queries
from coldgate.cloud.db import insert_items
from coldgate.cloud.db.models import BatchRange, DeadLetter, Gateway, Sensor, Site, StreamCoverage
from coldgate.configfile import ConfigError
from coldgate.contract import examples
from coldgate.contract.evidence import Evidence
from coldgate.contract.items import (
    Alert,
    AlertAction,
    Gap,
    GapCause,
    Item,
    Quality,
    Reading,
    Severity,
    SubjectType,
)
from tests.rig import items
from tests.rig.ports import free_port

TOKEN = "qa-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = 1_795_000_000_000  # 2026-11-18T11:06:40Z
BOOT = examples.BOOT
SEEN = datetime.datetime(2026, 11, 18, 7, 0, tzinfo=datetime.UTC)
READINGS = "/gateways/gw01/sensors/cr1-t01/readings"


# ---------------------------------------------------------------- fixtures


def tokens() -> ApiTokens:
    return ApiTokens((("qa", TOKEN), ("ops", "ops-token-fedcba9876543210")))


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine, tokens())) as client:
        yield client


def stamp(seq: int, ts: int) -> dict[str, Any]:
    return {"seq": seq, "ts": ts, "boot": BOOT, "mono": 1_000 + seq, "synced": True}


def reading(seq: int, ts: int, value: float | None, sensor: str = "cr1-t01", quality: str = "ok") -> Reading:
    """The rig's reading with this module's stamps; a bad one says why in its reason."""
    reason = None if quality == "ok" else f"{quality} reading"
    return items.reading(
        value, sensor=sensor, quality=Quality(quality), reason=reason, **stamp(seq, ts)
    )


def sensor_series() -> list[Reading]:
    """100 readings of cr1-t01, one a second from T0, every 7th suspect and every 11th an error."""
    items = []
    for i in range(100):
        quality = "error" if i % 11 == 5 else "suspect" if i % 7 == 3 else "ok"
        value = None if quality == "error" else round(4.0 + ((i * 37) % 23) / 10, 1)
        items.append(reading(1 + i, T0 + i * 1000, value, quality=quality))
    return items


def put(engine: Engine, gateway: str, stream: str, items: list[Item]) -> None:
    with engine.begin() as conn:
        insert_items(conn, gateway, "site1", stream, items)


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    return seed(engine)


def seed(engine: Engine) -> Engine:
    """Two sites, two gateways (one online with a full status, one gone with its will), sensors, readings."""
    status = msgspec.to_builtins(examples.STATUS)
    will = msgspec.to_builtins(examples.STATUS_WILL)
    with engine.begin() as conn:
        conn.execute(insert(Site), [{"id": "site1", "name": "Amsterdam DC"}, {"id": "site2", "name": None}])
        conn.execute(
            insert(Gateway),
            [
                {
                    "id": "gw01",
                    "site": "site1",
                    "first_seen": SEEN,
                    "last_seen": SEEN + datetime.timedelta(minutes=5),
                    "online": True,
                    "last_status": status,
                    "boot": BOOT,
                    "state_since": SEEN,
                },
                {
                    "id": "gw02",
                    "site": "site2",
                    "first_seen": SEEN,
                    "last_seen": SEEN,
                    "online": False,
                    "last_status": will,
                    "boot": None,
                    "state_since": None,
                },
            ],
        )
        conn.execute(
            insert(Sensor),
            [
                {
                    "gateway": "gw01",
                    "id": "cr1-t01",
                    "zone": "cr1",
                    "calibration_due": datetime.date(2027, 1, 31),
                },
                {"gateway": "gw01", "id": "cr1-h01", "zone": "cr1", "calibration_due": None},
                {"gateway": "gw02", "id": "cr2-t01.temperature", "zone": None, "calibration_due": None},
            ],
        )
        conn.execute(
            insert(StreamCoverage),
            [
                {"gateway": "gw01", "stream": "s-0001", "site": "site1", "covered": 1047, "updated_at": SEEN},
                {"gateway": "gw01", "stream": "s-0002", "site": "site1", "covered": 12, "updated_at": SEEN},
            ],
        )
        conn.execute(
            insert(BatchRange),
            [
                {"gateway": "gw01", "stream": "s-0002", "first_seq": 40, "last_seq": 41},
                {"gateway": "gw01", "stream": "s-0002", "first_seq": 20, "last_seq": 30},
            ],
        )
    put(engine, "gw01", "s-0001", list(sensor_series()))
    # gw02's sensor: the newest reading by ts has the lower seq (a backlog sent late), and a reading of
    # another gateway's sensor with the same id must not leak in.
    put(
        engine,
        "gw02",
        "s-0009",
        [
            reading(1, T0 + 500_000, -18.5, "cr2-t01.temperature"),
            reading(2, T0 + 400_000, -19.0, "cr2-t01.temperature"),
        ],
    )
    # The same instant again on a later stream (a replaced SD card re-sending): the later stream wins.
    put(engine, "gw02", "s-0010", [reading(1, T0 + 500_000, -18.4, "cr2-t01.temperature")])
    put(engine, "gw01", "s-0002", [reading(1, T0 + 900_000, 30.0, "cr2-t01.temperature")])
    return engine


# ---------------------------------------------------------------- auth and tokens


def test_health_is_open_and_everything_else_needs_a_token(client: TestClient, seeded: Engine) -> None:
    assert client.get("/health").json() == {"status": "ok", "database": "ok"}
    paths = ["/gateways", "/gateways/gw01", "/sensors", f"{READINGS}?from={T0}&to={T0 + 1}"]
    paths += ["/gaps", "/alerts", "/dead-letters"]
    for path in paths:
        missing = client.get(path)
        assert missing.status_code == 401, path
        assert missing.headers["WWW-Authenticate"] == "Bearer"
        assert "no credentials" in missing.json()["detail"]
        wrong = client.get(path, headers={"Authorization": f"Bearer {TOKEN}x"})
        assert wrong.status_code == 401, path
        assert wrong.headers["WWW-Authenticate"] == "Bearer"
        assert "unknown bearer token" in wrong.json()["detail"]
        basic = client.get(path, headers={"Authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 401, path
        assert client.get(path, headers=AUTH).status_code == 200, path
    # The second token works too; an unknown gateway without a token is 401, not 404 (nothing leaks).
    assert (
        client.get("/gateways", headers={"Authorization": "Bearer ops-token-fedcba9876543210"}).status_code
        == 200
    )
    assert client.get("/gateways/nope").status_code == 401


def test_api_tokens_identify_by_name() -> None:
    api_tokens = tokens()
    assert api_tokens.identify(TOKEN) == "qa"
    assert api_tokens.identify("ops-token-fedcba9876543210") == "ops"
    assert api_tokens.identify("") is None
    assert api_tokens.identify("qa-token-0123456789abcdeF") is None
    assert api_tokens.identify("qa-token-0123456789abcdé") is None
    assert TOKEN not in repr(api_tokens)


def test_load_tokens_reads_names_and_skips_comments(tmp_path: Path) -> None:
    path = tmp_path / "api-tokens"
    path.write_text(
        f"# QA workstation\n\nqa:{TOKEN}\n  ops : ops-token-fedcba9876543210  \n", encoding="utf-8"
    )
    assert load_tokens(path).entries == (("qa", TOKEN), ("ops", "ops-token-fedcba9876543210"))


@pytest.mark.parametrize(
    ("content", "line", "words"),
    [
        (f"# tokens\nqa:{TOKEN}\n{TOKEN}\n", 3, 'expected "name:token"'),
        ("qa:short\n", 1, "5 characters; at least 16"),
        (f"qa:{TOKEN}\n\nops:{TOKEN}\n", 3, "repeats the one on line 1"),
        ("qa:\n", 1, "empty or has spaces"),
        ("qa:has space 0123456789\n", 1, "empty or has spaces"),
        (f" :{TOKEN}\n", 1, "the name before ':'"),
    ],
)
def test_load_tokens_names_the_bad_line(tmp_path: Path, content: str, line: int, words: str) -> None:
    path = tmp_path / "api-tokens"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_tokens(path)
    assert caught.value.line == line
    assert caught.value.file == str(path)
    assert words in str(caught.value)
    assert f"line {line}" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_load_tokens_refuses_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read API tokens: No such file"):
        load_tokens(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.write_text("# nobody yet\n\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no tokens"):
        load_tokens(empty)


# ---------------------------------------------------------------- health


def test_health_503_when_sqlite_directory_is_gone(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'deleted' / 'cloud.sqlite3'}")
    with TestClient(create_app(engine, tokens())) as client:
        reply = client.get("/health")
        assert reply.status_code == 503
        assert reply.json() == {"status": "degraded", "database": "unavailable: unable to open database file"}
        # Other endpoints answer 503 with the reason too, not a 500.
        reply = client.get("/gateways", headers=AUTH)
        assert reply.status_code == 503
        assert reply.json() == {"detail": "database unavailable: unable to open database file"}
    engine.dispose()


def test_health_503_when_postgresql_refuses() -> None:
    pytest.importorskip("psycopg", reason="PostgreSQL tests need the [cloud] extra")
    port = free_port()
    engine = create_engine(f"postgresql+psycopg://coldgate@127.0.0.1:{port}/coldgate?connect_timeout=2")
    with TestClient(create_app(engine, tokens())) as client:
        reply = client.get("/health")
    engine.dispose()
    assert reply.status_code == 503
    database = reply.json()["database"]
    assert database.startswith("unavailable: ")
    assert f"port {port}" in database
    assert "\n" not in database


# ---------------------------------------------------------------- gateways


def test_gateways_unpack_status_and_coverage(client: TestClient, seeded: Engine) -> None:
    items = client.get("/gateways", headers=AUTH).json()["items"]
    assert [g["id"] for g in items] == ["gw01", "gw02"]
    gw01 = client.get("/gateways/gw01", headers=AUTH).json()
    assert gw01 == items[0]
    assert gw01["site"] == "site1"
    assert gw01["online"] is True
    assert gw01["first_seen"] == "2026-11-18T07:00:00Z"
    assert gw01["last_seen"] == "2026-11-18T07:05:00Z"
    assert gw01["state_since"] == "2026-11-18T07:00:00Z"
    assert gw01["boot"] == BOOT
    assert gw01["software"] == "coldgate 0.1.0"
    assert gw01["heartbeat_s"] == 60
    assert gw01["status_ts"] == examples.T0 + 10_000
    assert gw01["status_ts_iso"] == "2025-03-04T09:15:10.000Z"
    assert gw01["clock"] == {"synced": True, "offset_ms": -0.8, "source": "chrony"}
    assert gw01["backlog"] == {
        "outbox_depth": 7,
        "oldest_unacked": examples.T0,
        "oldest_unacked_iso": "2025-03-04T09:15:00.000Z",
    }
    assert gw01["alarm"] == {
        "active": True,
        "sounding": True,
        "silenced": False,
        "acknowledged": False,
        "alerts": ["gw01-a-000311"],
    }
    assert gw01["streams"] == [
        {
            "stream": "s-0001",
            "covered": 1047,
            "updated_at": "2026-11-18T07:00:00Z",
            "adopted": None,
            "pending_ranges": 0,
            "next_pending_seq": None,
        },
        {
            "stream": "s-0002",
            "covered": 12,
            "updated_at": "2026-11-18T07:00:00Z",
            "adopted": None,
            "pending_ranges": 2,
            "next_pending_seq": 20,
        },
    ]
    # A gateway whose newest status is its last will: no clock, backlog or alarm to show.
    gw02 = items[1]
    assert (gw02["online"], gw02["clock"], gw02["backlog"], gw02["alarm"], gw02["streams"]) == (
        False,
        None,
        None,
        None,
        [],
    )
    assert [g["id"] for g in client.get("/gateways?site=site2", headers=AUTH).json()["items"]] == ["gw02"]


def test_unknown_gateway_is_404_naming_it(client: TestClient, seeded: Engine) -> None:
    reply = client.get("/gateways/gw99", headers=AUTH)
    assert reply.status_code == 404
    assert reply.json() == {"detail": "no gateway 'gw99'"}


# ---------------------------------------------------------------- sensors


def test_sensors_carry_their_newest_reading(client: TestClient, seeded: Engine) -> None:
    items = client.get("/sensors", headers=AUTH).json()["items"]
    assert [(s["gateway"], s["id"]) for s in items] == [
        ("gw01", "cr1-h01"),
        ("gw01", "cr1-t01"),
        ("gw02", "cr2-t01.temperature"),
    ]
    h01, t01, cr2 = items
    assert h01["last_reading"] is None
    assert t01["zone"] == "cr1"
    assert t01["calibration_due"] == "2027-01-31"
    assert t01["site"] == "site1"
    last = sensor_series()[-1]
    assert t01["last_reading"] == {
        "ts": last.ts,
        "ts_iso": "2026-11-18T11:08:19.000Z",
        "ts_corrected": None,
        "value": last.value,
        "unit": "CEL",
        "quantity": "temperature",
        "quality": "ok",
        "reason": None,
    }
    # Newest by ts, not seq; the later stream wins a tie; gw01's same-named sensor is not gw02's.
    assert (cr2["last_reading"]["ts"], cr2["last_reading"]["value"]) == (T0 + 500_000, -18.4)
    only_site2 = client.get("/sensors?site=site2", headers=AUTH).json()["items"]
    assert [s["id"] for s in only_site2] == ["cr2-t01.temperature"]
    only_gw01 = client.get("/sensors", params={"gateway": "gw01"}, headers=AUTH).json()["items"]
    assert [s["id"] for s in only_gw01] == ["cr1-h01", "cr1-t01"]


def test_newest_reading_lookup_probes_the_index(seeded: Engine) -> None:
    """Each sensor's newest reading is an index probe on (gateway, sensor), never a scan of readings."""
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        seen.append((statement, parameters))

    with seeded.connect() as conn:
        if seeded.dialect.name == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")  # a few test rows would make any scan cheapest
        event.listen(conn, "before_cursor_execute", capture)
        queries.sensors(conn, None, None)
        event.remove(conn, "before_cursor_execute", capture)
        statement, parameters = seen[-1]
        explain = "EXPLAIN QUERY PLAN" if seeded.dialect.name == "sqlite" else "EXPLAIN"
        plan = [str(row[-1]) for row in conn.exec_driver_sql(f"{explain} {statement}", parameters)]
    if seeded.dialect.name == "sqlite":
        probes = [step for step in plan if "readings" in step or "probe" in step]
        assert len(probes) == 2, plan
        assert all("ix_readings_sensor_ts (gateway=? AND sensor=?" in step for step in probes), plan
    else:
        text_plan = "\n".join(plan)
        assert "Seq Scan" not in text_plan, text_plan
        scans = [line for line in plan if "readings" in line and "Scan" in line]
        conds = [line for line in plan if "sensor)::text = (sensors.id)::text" in line]
        assert scans, text_plan
        assert all("gateway_sensor_ts_idx" in line for line in scans), text_plan
        assert len(conds) == len(scans), text_plan


# ---------------------------------------------------------------- readings


def expected_buckets(start: int, width: int, items: list[Reading]) -> list[dict[str, Any]]:
    """Buckets computed the slow, obvious way, to hold the SQL to."""
    groups: dict[int, list[Reading]] = {}
    for item in items:
        groups.setdefault((item.ts - start) // width, []).append(item)
    result = []
    for number in sorted(groups):
        members = groups[number]
        ok = [m.value for m in members if m.quality is Quality.OK and m.value is not None]
        result.append(
            {
                "start": start + number * width,
                "count": len(members),
                "min": min(ok) if ok else None,
                "max": max(ok) if ok else None,
                "avg": sum(ok) / len(ok) if ok else None,
                "not_ok": sum(1 for m in members if m.quality is not Quality.OK),
            }
        )
    return result


def test_readings_raw_when_few_enough(client: TestClient, seeded: Engine) -> None:
    reply = client.get(READINGS, params={"from": T0, "to": T0 + 100_000, "max_points": 100}, headers=AUTH)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["mode"], body["bucket_ms"], body["count"], body["buckets"]) == ("raw", None, 100, None)
    assert (body["from"], body["to"]) == (T0, T0 + 100_000)
    assert (body["from_iso"], body["to_iso"]) == ("2026-11-18T11:06:40.000Z", "2026-11-18T11:08:20.000Z")
    series = sensor_series()
    assert [p["ts"] for p in body["points"]] == [r.ts for r in series]
    assert [p["value"] for p in body["points"]] == [r.value for r in series]
    error = body["points"][5]
    assert error == {
        "ts": T0 + 5000,
        "ts_iso": "2026-11-18T11:06:45.000Z",
        "ts_corrected": None,
        "value": None,
        "quality": "error",
        "reason": "error reading",
    }
    # from is inclusive and to exclusive; ISO times with a zone work the same as epoch ms.
    reply = client.get(
        READINGS, params={"from": "2026-11-18T12:06:41+01:00", "to": "2026-11-18T11:06:43Z"}, headers=AUTH
    )
    assert [p["ts"] for p in reply.json()["points"]] == [T0 + 1000, T0 + 2000]


def test_readings_bucketed_beyond_max_points(client: TestClient, seeded: Engine) -> None:
    start, end = T0 - 3_000, T0 + 100_000
    reply = client.get(READINGS, params={"from": start, "to": end, "max_points": 7}, headers=AUTH)
    body = reply.json()
    width = -(-(end - start) // 7)
    assert width == 14_715
    assert (body["mode"], body["bucket_ms"], body["count"], body["points"]) == ("buckets", width, 100, None)
    expected = expected_buckets(start, width, sensor_series())
    got = body["buckets"]
    assert len(got) == len(expected) == 7
    for bucket, want in zip(got, expected, strict=True):
        assert bucket["start_iso"].endswith("Z")
        avg = bucket.pop("avg")
        bucket.pop("start_iso")
        assert bucket.pop("arrhenius") is None  # buckets under an hour come from the readings, not summaries
        assert avg == pytest.approx(want.pop("avg"), rel=1e-12)
        assert bucket == want
    # One more point than the range holds flips back to raw; one fewer buckets.
    params = {"from": T0, "to": T0 + 100_000}
    assert client.get(READINGS, params={**params, "max_points": 100}, headers=AUTH).json()["mode"] == "raw"
    fewer = client.get(READINGS, params={**params, "max_points": 99}, headers=AUTH).json()
    assert (fewer["mode"], fewer["bucket_ms"], fewer["count"]) == ("buckets", 1011, 100)


def test_readings_of_unknown_gateway_or_sensor_are_404(client: TestClient, seeded: Engine) -> None:
    window = {"from": T0, "to": T0 + 1000}
    reply = client.get("/gateways/gw99/sensors/cr1-t01/readings", params=window, headers=AUTH)
    assert (reply.status_code, reply.json()) == (404, {"detail": "no gateway 'gw99'"})
    reply = client.get("/gateways/gw01/sensors/cr9-x/readings", params=window, headers=AUTH)
    assert (reply.status_code, reply.json()) == (404, {"detail": "no sensor 'cr9-x' on gateway 'gw01'"})
    # A sensor ingest has not registered yet but that has readings is found.
    reply = client.get("/gateways/gw01/sensors/cr2-t01.temperature/readings", params=window, headers=AUTH)
    assert reply.status_code == 200


BAD_TIMES: list[tuple[dict[str, Any], str, str]] = [
    ({"from": "yesterday", "to": T0}, "from", "'yesterday' is neither epoch milliseconds"),
    ({"from": "2026-11-18T07:00:00", "to": T0}, "from", "has no time zone: add Z or an offset"),
    ({"from": T0, "to": "1.7e12"}, "to", "'1.7e12' is neither epoch milliseconds"),
    ({"from": -5, "to": T0}, "from", "-5 is outside 0..253402300799999 epoch milliseconds"),
    ({"from": "1969-12-31T23:59:59Z", "to": T0}, "from", "is before 1970"),
    ({"from": T0, "to": T0}, "to", f"'to' ({T0}) must be after 'from' ({T0})"),
    ({"from": T0, "to": T0 - 1}, "to", "must be after"),
    ({"from": T0, "to": T0 + 367 * 86_400_000}, "to", "the range is 367.0 days; at most 366 days"),
    ({"to": T0}, "from", "Field required"),
    ({"from": T0, "to": T0 + 1, "max_points": 0}, "max_points", "greater than or equal to 1"),
    ({"from": T0, "to": T0 + 1, "max_points": 10_001}, "max_points", "less than or equal to 10000"),
]


def test_bad_times_are_422_with_the_reason(client: TestClient, seeded: Engine) -> None:
    for query, field, words in BAD_TIMES:
        reply = client.get(READINGS, params=query, headers=AUTH)
        assert reply.status_code == 422, query
        [error] = reply.json()["detail"]
        assert error["loc"] == ["query", field], query
        assert words in error["msg"], (query, error["msg"])
    # A "+" typed into a URL arrives as a space; the message says so.
    reply = client.get(f"{READINGS}?from=2026-11-18T08:00:00+01:00&to={T0}", headers=AUTH)
    assert reply.status_code == 422
    assert "send the offset as %2B01:00" in reply.json()["detail"][0]["msg"]
    # Exactly 366 days is allowed.
    reply = client.get(READINGS, params={"from": T0, "to": T0 + 366 * 86_400_000}, headers=AUTH)
    assert reply.status_code == 200


# ---------------------------------------------------------------- gaps


def gap(seq: int, subject: str, start: int, end: int | None, cause: GapCause, detail: str = "") -> Gap:
    return Gap(
        **stamp(seq, (end or start) + 10),
        subject_type=SubjectType.GATEWAY if cause is GapCause.GATEWAY_OFFLINE else SubjectType.SENSOR,
        subject=subject,
        start=start,
        end=end,
        cause=cause,
        detail=detail,
    )


def test_gaps_fold_open_and_closing_reports(client: TestClient, seeded: Engine) -> None:
    offline = GapCause.SENSOR_OFFLINE
    put(
        seeded,
        "gw01",
        "s-0001",
        [
            gap(200, "cr1-h01", T0, None, offline, "no answer"),
            gap(201, "cr1-h01", T0, None, offline, "no answer"),  # re-sent while open
            gap(202, "cr1-t01", T0 + 60_000, None, offline, "no answer"),
            gap(203, "cr1-h01", T0, T0 + 30_000, offline, "answered again"),
        ],
    )
    # The cloud's own watchdog reports on its own stream.
    put(
        seeded,
        "gw02",
        "cloud",
        [
            gap(1, "gw02", T0 - 600_000, None, GapCause.GATEWAY_OFFLINE),
            gap(2, "gw02", T0 - 600_000, T0 - 300_000, GapCause.GATEWAY_OFFLINE, "heartbeat resumed"),
        ],
    )
    items = client.get("/gaps", headers=AUTH).json()["items"]
    assert [(g["gateway"], g["subject"], g["open"], g["end"], g["reports"]) for g in items] == [
        ("gw01", "cr1-t01", True, None, 1),
        ("gw01", "cr1-h01", False, T0 + 30_000, 3),
        ("gw02", "gw02", False, T0 - 300_000, 2),
    ]
    closed = items[1]
    assert closed["detail"] == "answered again"
    assert closed["duration_ms"] == 30_000
    assert (closed["start_iso"], closed["end_iso"]) == (
        "2026-11-18T11:06:40.000Z",
        "2026-11-18T11:07:10.000Z",
    )
    assert closed["subject_type"] == "sensor"
    assert closed["cause"] == "sensor_offline"
    assert items[2]["subject_type"] == "gateway"

    def subjects(**params: Any) -> list[str]:
        reply = client.get("/gaps", params=params, headers=AUTH)
        assert reply.status_code == 200, reply.text
        return [g["subject"] for g in reply.json()["items"]]

    assert subjects(open="true") == ["cr1-t01"]
    assert subjects(open="false") == ["cr1-h01", "gw02"]
    assert subjects(gateway="gw02") == ["gw02"]
    assert subjects(limit=1) == ["cr1-t01"]
    # A window keeps what overlaps it: the gw02 gap ended before T0 - 100 s; the open one is still going.
    assert subjects(**{"from": T0 - 100_000, "to": T0 + 1}) == ["cr1-h01"]
    assert subjects(**{"from": T0 + 40_000}) == ["cr1-t01"]
    assert subjects(to="2026-11-18T11:00:00Z") == ["gw02"]
    assert client.get("/gaps", params={"limit": 1001}, headers=AUTH).status_code == 422
    assert client.get("/gaps", params={"from": "soon"}, headers=AUTH).status_code == 422


# ---------------------------------------------------------------- alerts


def alert_step(
    seq: int, ts: int, alert_id: str, action: AlertAction, severity: Severity, peak: float
) -> Alert:
    evidence = msgspec.structs.replace(examples.ALERT.evidence, peak=peak)
    return Alert(
        **stamp(seq, ts),
        alert_id=alert_id,
        action=action,
        rule="temperature.excursion",
        subject_type=SubjectType.SENSOR,
        subject="cr1-t01",
        severity=severity,
        message=f"{alert_id} {action}",
        evidence=evidence,
    )


def test_alerts_fold_steps(client: TestClient, seeded: Engine) -> None:
    warn, crit = Severity.WARNING, Severity.CRITICAL
    put(
        seeded,
        "gw01",
        "s-0001",
        [
            alert_step(300, T0, "a-1", AlertAction.RAISED, warn, 8.4),
            alert_step(301, T0 + 60_000, "a-1", AlertAction.UPDATED, crit, 9.1),
            alert_step(302, T0 + 120_000, "a-1", AlertAction.CLEARED, crit, 9.1),
            alert_step(303, T0 + 200_000, "a-2", AlertAction.RAISED, warn, 7.6),
            alert_step(304, T0 + 260_000, "a-2", AlertAction.UPDATED, crit, 8.8),
        ],
    )
    put(seeded, "gw02", "s-0009", [alert_step(10, T0 + 100_000, "a-1", AlertAction.RAISED, warn, 7.9)])

    open_alerts = client.get("/alerts", headers=AUTH).json()["items"]
    assert [(a["gateway"], a["alert_id"]) for a in open_alerts] == [("gw01", "a-2"), ("gw02", "a-1")]
    a2 = open_alerts[0]
    assert (a2["open"], a2["last_action"], a2["steps"], a2["severity"]) == (True, "updated", 2, "critical")
    assert (a2["raised_at"], a2["updated_at"]) == (T0 + 200_000, T0 + 260_000)
    assert a2["raised_at_iso"] == "2026-11-18T11:10:00.000Z"
    assert a2["evidence"]["peak"] == 8.8
    assert a2["evidence"]["limits"]["high"] == 8.0
    assert a2["message"] == "a-2 updated"

    everything = client.get("/alerts", params={"state": "all"}, headers=AUTH).json()["items"]
    assert [(a["gateway"], a["alert_id"], a["open"]) for a in everything] == [
        ("gw01", "a-2", True),
        ("gw02", "a-1", True),
        ("gw01", "a-1", False),
    ]
    cleared = everything[2]
    assert (cleared["last_action"], cleared["steps"], cleared["raised_at"]) == ("cleared", 3, T0)

    def ids(**params: Any) -> list[tuple[str, str]]:
        reply = client.get("/alerts", params=params, headers=AUTH)
        assert reply.status_code == 200, reply.text
        return [(a["gateway"], a["alert_id"]) for a in reply.json()["items"]]

    assert ids(severity="critical") == [("gw01", "a-2")]
    assert ids(severity="critical", state="all") == [("gw01", "a-2"), ("gw01", "a-1")]
    assert ids(gateway="gw02") == [("gw02", "a-1")]
    assert ids(state="all", limit=1) == [("gw01", "a-2")]
    assert client.get("/alerts", params={"state": "closed"}, headers=AUTH).status_code == 422
    assert client.get("/alerts", params={"severity": "panic"}, headers=AUTH).status_code == 422


def door_step(seq: int, ts: int, alert_id: str, action: AlertAction) -> Alert:
    """A door alert: another rule, and a subject that is not a sensor."""
    return Alert(
        **stamp(seq, ts),
        alert_id=alert_id,
        action=action,
        rule="door.open",
        subject_type=SubjectType.DOOR,
        subject="dock1",
        severity=Severity.WARNING,
        message=f"{alert_id} {action}",
        evidence=Evidence(start=ts),
    )


def filtered_alerts(engine: Engine) -> None:
    """gw01 (site1): a-1 raised at T0, cleared at T0+120 s; d-1 a door alert from T0+50 s to T0+80 s;
    a-2 open since T0+200 s.  gw02 (site2): a-1 open since T0+100 s."""
    warn, crit = Severity.WARNING, Severity.CRITICAL
    put(engine, "gw01", "s-0001", [
        alert_step(300, T0, "a-1", AlertAction.RAISED, warn, 8.4),
        alert_step(302, T0 + 120_000, "a-1", AlertAction.CLEARED, crit, 9.1),
        door_step(303, T0 + 50_000, "d-1", AlertAction.RAISED),
        door_step(304, T0 + 80_000, "d-1", AlertAction.CLEARED),
        alert_step(305, T0 + 200_000, "a-2", AlertAction.RAISED, warn, 7.6),
    ])  # fmt: skip
    put(engine, "gw02", "s-0009", [alert_step(10, T0 + 100_000, "a-1", AlertAction.RAISED, warn, 7.9)])


def test_alerts_filter_by_site_rule_and_time(client: TestClient, seeded: Engine) -> None:
    filtered_alerts(seeded)

    def ids(**params: Any) -> list[str]:
        reply = client.get("/alerts", params={"state": "all", **params}, headers=AUTH)
        assert reply.status_code == 200, reply.text
        return [f"{a['gateway']}/{a['alert_id']}" for a in reply.json()["items"]]

    assert ids() == ["gw01/a-2", "gw02/a-1", "gw01/d-1", "gw01/a-1"]
    assert ids(site="site1") == ["gw01/a-2", "gw01/d-1", "gw01/a-1"]
    assert ids(site="site2") == ["gw02/a-1"]
    assert ids(site="nowhere") == []
    assert ids(rule="door.open") == ["gw01/d-1"]
    assert ids(rule="temperature.excursion", site="site1") == ["gw01/a-2", "gw01/a-1"]
    assert ids(rule="temperature.excursion", site="site1", state="open") == ["gw01/a-2"]
    assert ids(rule="no.such.rule") == []
    # A window keeps what overlaps it, an open alert lasting until now; the clearing counts as inside.
    assert ids(**{"from": T0 + 130_000}) == ["gw01/a-2", "gw02/a-1"]
    assert ids(**{"from": T0 + 120_000}) == ["gw01/a-2", "gw02/a-1", "gw01/a-1"]
    assert ids(to=T0 + 60_000) == ["gw01/d-1", "gw01/a-1"]
    assert ids(to=T0) == []  # raised at T0: not before it
    assert ids(**{"from": T0 + 100_000, "to": T0 + 110_000}) == ["gw02/a-1", "gw01/a-1"]
    assert ids(**{"from": "2026-11-18T11:08:50Z"}) == ids(**{"from": T0 + 130_000})
    assert ids(**{"from": "2026-11-18T12:08:50+01:00"}) == ids(**{"from": T0 + 130_000})
    assert ids(site="site1", rule="door.open", severity="warning", to=T0 + 60_000) == ["gw01/d-1"]
    # The pages ask for open ones first, so their limit never cuts an alert still open (a door left open
    # long before the newest closed ones).
    put(seeded, "gw01", "s-0001", [door_step(299, T0 - 600_000, "d-0", AlertAction.RAISED)])
    with seeded.connect() as conn:
        newest = queries.alerts(conn, None, False, None, 4)
        open_first = queries.alerts(conn, None, False, None, 4, open_first=True)
    assert [a.alert_id for a in newest] == ["a-2", "a-1", "d-1", "a-1"]
    assert [(a.alert_id, a.open) for a in open_first] == [("a-2", True), ("a-1", True), ("d-0", True),
                                                          ("d-1", False)]  # fmt: skip
    door = client.get("/alerts", params={"rule": "door.open", "state": "all"}, headers=AUTH).json()["items"]
    assert (door[0]["subject_type"], door[0]["subject"], door[0]["open"]) == ("door", "dock1", False)


def test_gaps_filter_by_site_and_time_open_ones_first(client: TestClient, seeded: Engine) -> None:
    offline = GapCause.SENSOR_OFFLINE
    put(seeded, "gw01", "s-0001", [
        gap(200, "cr1-h01", T0, None, offline),
        gap(201, "cr1-h01", T0, T0 + 30_000, offline),
        gap(202, "cr1-t01", T0 + 60_000, None, offline),
    ])  # fmt: skip
    put(seeded, "gw02", "s-0009", [gap(20, "cr2-t01.temperature", T0 - 900_000, None, offline)])
    put(seeded, "gw02", "cloud", [
        gap(1, "gw02", T0 - 600_000, T0 - 300_000, GapCause.GATEWAY_OFFLINE),
    ])  # fmt: skip

    def subjects(**params: Any) -> list[str]:
        reply = client.get("/gaps", params=params, headers=AUTH)
        assert reply.status_code == 200, reply.text
        return [g["subject"] for g in reply.json()["items"]]

    # Open ones first, however old (cr2's began before every closed one), then newest start first.
    assert subjects() == ["cr1-t01", "cr2-t01.temperature", "cr1-h01", "gw02"]
    assert subjects(limit=2) == ["cr1-t01", "cr2-t01.temperature"]
    assert subjects(site="site2") == ["cr2-t01.temperature", "gw02"]
    assert subjects(site="site1", open="false") == ["cr1-h01"]
    assert subjects(site="site1", gateway="gw02") == []
    assert subjects(site="nowhere") == []
    assert subjects(**{"from": T0 - 500_000, "to": T0 - 400_000}) == ["cr2-t01.temperature", "gw02"]
    assert subjects(**{"from": T0 + 40_000}, site="site1") == ["cr1-t01"]
    # A list's window has no longest length (a chart's range has): two years is a fair question.
    assert subjects(**{"from": T0 - 2 * 366 * 86_400_000, "to": T0 + 1}, site="site2") == [
        "cr2-t01.temperature",
        "gw02",
    ]


FILTER_ERRORS = [
    ("/alerts", {"from": "soon"}, "from", "is neither epoch milliseconds"),
    ("/alerts", {"to": "2026-11-18T11:00:00"}, "to", "has no time zone"),
    ("/alerts", {"from": T0, "to": T0}, "to", "must be after 'from'"),
    ("/alerts", {"from": "-5"}, "from", "is outside 0.."),
    ("/alerts", {"rule": "r" * 129}, "rule", "at most 128 characters"),
    ("/alerts", {"site": "s" * 65}, "site", "at most 64 characters"),
    ("/gaps", {"from": "1969-12-31T23:00:00Z"}, "from", "is before 1970"),
    ("/gaps", {"to": "yesterday"}, "to", "is neither epoch milliseconds"),
    ("/gaps", {"from": T0 + 1, "to": T0}, "to", "must be after 'from'"),
    ("/gaps", {"site": "s" * 65}, "site", "at most 64 characters"),
]


@pytest.mark.parametrize(("path", "params", "field", "words"), FILTER_ERRORS)
def test_bad_list_filters_are_422_naming_the_parameter(
    client: TestClient, seeded: Engine, path: str, params: dict[str, Any], field: str, words: str
) -> None:
    reply = client.get(path, params=params, headers=AUTH)
    assert reply.status_code == 422, reply.text
    [error] = reply.json()["detail"]
    assert error["loc"] == ["query", field]
    assert words in error["msg"], error["msg"]


filter_text = (
    st.text(max_size=40)
    | st.integers(-(10**16), 10**17).map(str)
    | st.datetimes(timezones=st.none() | st.just(datetime.UTC)).map(lambda d: d.isoformat())
    | st.sampled_from(["site1", "gw01", "door.open", "open", "all", "critical", "true", "1", "0"])
)
LIST_PARAMS = ("site", "gateway", "rule", "from", "to", "state", "severity", "open", "limit")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(["/alerts", "/gaps"]),
    params=st.dictionaries(st.sampled_from(LIST_PARAMS), filter_text, max_size=5),
)
def test_any_list_filter_is_an_answer_never_a_500(
    client: TestClient, seeded: Engine, path: str, params: dict[str, str]
) -> None:
    reply = client.get(path, params=params, headers=AUTH)
    assert reply.status_code in (200, 422), (params, reply.text[:300])
    if reply.status_code == 422:
        named = {tuple(e["loc"])[-1] for e in reply.json()["detail"]}
        assert named <= set(LIST_PARAMS), (params, named)


# ---------------------------------------------------------------- dead letters


def test_dead_letters_show_only_the_payload_head(client: TestClient, seeded: Engine) -> None:
    big = b"\xff" + b"a" * 999
    with seeded.begin() as conn:
        conn.execute(
            insert(DeadLetter),
            [
                {
                    "received_at": SEEN,
                    "topic": "coldgate/v1/site1/gw01/batch",
                    "payload": big,
                    "reason": "unknown field 'colour'",
                    "gateway": "gw01",
                    "path": "$.items[3].colour",
                    "repeats": 4,
                    "last_received_at": SEEN + datetime.timedelta(minutes=2),
                },
                {
                    "received_at": SEEN + datetime.timedelta(seconds=1),
                    "topic": "coldgate/v1/bad topic",
                    "payload": b"{}",
                    "reason": "topic does not match",
                    "gateway": None,
                    "path": None,
                    "repeats": 0,
                    "last_received_at": None,
                },
            ],
        )
    items = client.get("/dead-letters", headers=AUTH).json()["items"]
    assert [d["topic"] for d in items] == ["coldgate/v1/bad topic", "coldgate/v1/site1/gw01/batch"]
    newest, first = items
    assert (newest["payload_size"], newest["payload_head"], newest["gateway"]) == (2, "{}", None)
    assert first["payload_size"] == 1000
    assert first["payload_head"] == "\ufffd" + "a" * 199
    assert (first["path"], first["reason"]) == ("$.items[3].colour", "unknown field 'colour'")
    assert first["received_at"] == "2026-11-18T07:00:00Z"
    assert (first["repeats"], first["last_received_at"]) == (4, "2026-11-18T07:02:00Z")
    assert (newest["repeats"], newest["last_received_at"]) == (0, "2026-11-18T07:00:01Z")
    only = client.get("/dead-letters", params={"gateway": "gw01"}, headers=AUTH).json()["items"]
    assert [d["id"] for d in only] == [first["id"]]
    assert len(client.get("/dead-letters", params={"limit": 1}, headers=AUTH).json()["items"]) == 1


# ---------------------------------------------------------------- OpenAPI


def test_openapi_lists_every_path_and_the_bearer_scheme(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert {(m.upper(), p) for p, item in doc["paths"].items() for m in item} == set(access.ROUTES)
    assert doc["components"]["securitySchemes"]["bearer"]["type"] == "http"
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            public = access.ROUTES[(method.upper(), path)] == access.PUBLIC
            assert operation.get("security") == ([] if public else [{"bearer": []}]), (method, path)
    params = {
        p["name"] for p in doc["paths"]["/gateways/{gateway}/sensors/{sensor}/readings"]["get"]["parameters"]
    }
    assert {"from", "to", "max_points"} <= params
    assert "Swagger UI" in client.get("/docs").text
