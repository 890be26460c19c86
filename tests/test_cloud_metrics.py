"""``GET /metrics`` (issue 19): the cloud's figures for Prometheus, read from what is stored, on both
dialects; scraped with a viewer's token, refused without one; read back with ``prometheus_client``'s
own parser."""

from __future__ import annotations

import datetime

import msgspec
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from coldgate.cloud.alerts.case_store import open_cases
from coldgate.cloud.api import ApiTokens, create_app
from coldgate.contract import examples
from coldgate.contract.codec import encode
from coldgate.contract.topics import batch_topic
from tests.rig.cloud_db import RECEIVED, ingest
from tests.rig.ingest import SITE, batch, batch_message, enrol, reading, status_message
from tests.rig.people import bearer, person
from tests.rig.prometheus import samples

GW = "gw-metrics"
INGEST_COUNTERS = ("messages", "new", "new_readings", "duplicates", "conflicts", "dead_letters")


def test_a_scrape_counts_what_is_stored(engine: Engine) -> None:
    now = datetime.datetime.now(datetime.UTC)
    now_ms = int(now.timestamp() * 1000)
    enrol(engine, [GW, "gw-quiet"])
    ingest(engine, *batch_message(GW, [reading(seq, ts=now_ms - 1000 * seq) for seq in range(1, 6)]))
    alert = msgspec.structs.replace(examples.ALERT, seq=6, ts=now_ms - 500)
    ingest(engine, *batch_message(GW, [alert]))
    ingest(
        engine,
        *status_message(GW, ts=now_ms, last_seq=20, last_acked_seq=6, outbox_depth=14),
    )
    bad = msgspec.json.decode(encode(batch(GW, [reading(30, ts=now_ms)])))
    bad["items"][0]["value"] = "warm"
    for _ in range(3):  # one dead letter, received three times
        ingest(engine, batch_topic(SITE, GW), msgspec.json.encode(bad))
    with engine.begin() as conn:
        assert open_cases(conn, now) == 1
    _, token = person(engine, "vera", ("viewer",))
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        assert client.get("/metrics").status_code == 401
        answer = client.get("/metrics", headers=bearer(token))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    found = samples(answer.text)
    assert found[("coldgate_cloud_cases_open", (("state", "open"),))] == 1
    assert found[("coldgate_cloud_cases_open", (("state", "investigating"),))] == 0
    assert found[("coldgate_cloud_cases_overdue", ())] == 0
    assert found[("coldgate_cloud_dead_letters", ())] == 1
    assert found[("coldgate_cloud_dead_letters_received_total", ())] == 3
    assert found[("coldgate_cloud_gateway_online", (("gateway", GW),))] == 1
    assert found[("coldgate_cloud_gateway_unacked_items", (("gateway", GW),))] == 14
    heard = (now - RECEIVED).total_seconds()  # the rig's ingest receives everything at RECEIVED
    assert abs(found[("coldgate_cloud_gateway_last_seen_age_seconds", (("gateway", GW),))] - heard) < 60
    assert ("coldgate_cloud_gateway_online", (("gateway", "gw-quiet"),)) not in found, "never heard: no row"
    assert not any(name.startswith("coldgate_cloud_ingest_") for name, _ in found), (
        "no ingest in this process"
    )


def test_the_openapi_document_says_metrics_are_text(engine: Engine) -> None:
    with TestClient(create_app(engine, ApiTokens(()))) as client:
        answer = client.get("/openapi.json").json()["paths"]["/metrics"]["get"]["responses"]["200"]
    assert list(answer["content"]) == ["text/plain"]


def test_every_metric_the_grafana_dashboard_charts_is_exported() -> None:
    """deploy/grafana/coldgate.json must chart only what the gateway and the cloud export: a renamed
    metric would leave a panel silently empty."""
    import json
    import re
    from pathlib import Path

    from prometheus_client.exposition import generate_latest
    from prometheus_client.registry import Collector, CollectorRegistry

    from coldgate.cloud.api.queries_metrics import CloudFigures, GatewayFigures, families
    from coldgate.gateway.metrics import families as gateway_families

    figures = CloudFigures(
        cases={"open": 1}, cases_overdue=0, notifications_pending=0, notifications_oldest_s=0.0,
        dead_letters=0, dead_letters_received=0,
        gateways={"gw": GatewayFigures(True, 1.0, 0, 0.0)},
        ingest=dict.fromkeys(INGEST_COUNTERS, 1),
    )  # fmt: skip

    class Both(Collector):
        def collect(self):  # type: ignore[no-untyped-def]
            return [*families(figures), *gateway_families(examples.STATUS, examples.STATUS.ts)]

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Both())
    exported = {name for name, _ in samples(generate_latest(registry).decode())}
    dashboard = json.loads((Path(__file__).parents[1] / "deploy/grafana/coldgate.json").read_text())
    charted = {
        name
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        for name in re.findall(r"\bcoldgate_[a-z0-9_]+", target["expr"])
    }
    assert len(charted) >= 20
    assert charted <= exported, f"charted but not exported: {sorted(charted - exported)}"
