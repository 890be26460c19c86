"""Whether each gateway runs on what the cloud published: current, behind (since the first version it
has not applied), rejected (with its reason); the ``downlink.behind`` alert past the configured time,
cleared once the gateway reports the version in force.  Pure cases, then statuses through ingest on
both dialects, the watch's alert rows and ``GET /gateways/{gateway}/downlink``."""

from __future__ import annotations

import datetime

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from coldgate.cloud.api import ApiTokens, create_app
from coldgate.cloud.audit.log import Actor
from coldgate.cloud.catalog.temperature_classes import put_class
from coldgate.cloud.db.models import Alert
from coldgate.cloud.downlink.currency import ClearBehind, RaiseBehind, currency, judge
from coldgate.cloud.downlink.currency_watch import check_downlink
from coldgate.cloud.downlink.versions import due_documents
from coldgate.contract.uplink import DocumentVersions
from tests.rig.cloud_db import RECEIVED, ingest
from tests.rig.ingest import enrol, status_message
from tests.rig.people import bearer, person

T = 1_796_000_000_000
PUBLISHED = [(1, T), (2, T + 60_000), (3, T + 120_000)]


def test_current_behind_rejected_and_unknown() -> None:
    assert currency("g", "recall", PUBLISHED, {"versions": {"recall": 3}}).state == "current"
    behind = currency("g", "recall", PUBLISHED, {"versions": {"recall": 1}})
    assert (behind.state, behind.since, behind.applied) == ("behind", T + 60_000, 1)  # since v2 was issued
    assert "v3 published, v1 in force" in behind.detail
    errors = [{"kind": "recall_rejected", "message": "recall version 3: bad"}]
    rejected = currency("g", "recall", PUBLISHED, {"versions": {"recall": 2}, "errors": errors})
    assert (rejected.state, rejected.since) == ("rejected", T + 120_000) and "bad" in rejected.detail
    assert currency("g", "recall", PUBLISHED, None).state == "not reported"
    assert currency("g", "master", [], {"versions": {}}).state == "none published"


def test_the_alert_waits_for_the_configured_time_and_clears_when_current() -> None:
    behind = currency("g", "recall", PUBLISHED, {"versions": {"recall": 2}})
    assert judge([behind], set(), T + 120_000 + 299_000, 300) == []
    [raised] = judge([behind], set(), T + 120_000 + 300_000, 300)
    assert isinstance(raised, RaiseBehind) and raised.behind_s == 300
    assert judge([behind], {("g", "recall")}, T + 999_999, 300) == []  # one open alert, not one per run
    now_current = currency("g", "recall", PUBLISHED, {"versions": {"recall": 3}})
    assert judge([now_current], {("g", "recall")}, T + 999_999, 300) == [ClearBehind("g", "recall")]


def test_a_gateway_that_does_not_apply_the_recall_list_raises_downlink_behind(engine: Engine) -> None:
    enrol(engine, ["gw-cur"])
    published_at = RECEIVED
    with engine.begin() as conn:
        put_class(conn, "2-8C", {"low": 2, "high": 8}, reason="SOP", by=Actor("QA"), now=published_at)
        due_documents(conn, published_at, {"gw-cur"})  # master v1 and recall v1 for gw-cur
    ts = int(published_at.timestamp() * 1000)
    ingest(engine, *status_message("gw-cur", ts=ts + 1000, versions=DocumentVersions(master=1)))
    later = published_at + datetime.timedelta(seconds=301)
    actions = check_downlink(engine, later, 300)
    assert [(type(a).__name__, a.currency.kind) for a in actions] == [("RaiseBehind", "recall")]  # type: ignore[union-attr]
    assert check_downlink(engine, later + datetime.timedelta(seconds=10), 300) == []
    _, token = person(engine, "vera", ("viewer",))
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        states = client.get("/gateways/gw-cur/downlink", headers=bearer(token)).json()
        assert [(s["kind"], s["state"], s["published"], s["applied"]) for s in states] == [
            ("master", "current", 1, 1), ("recall", "behind", 1, None)
        ]  # fmt: skip
        assert client.get("/gateways/gw-none/downlink", headers=bearer(token)).status_code == 404
    status = status_message("gw-cur", ts=ts + 400_000, versions=DocumentVersions(master=1, recall=1))
    ingest(engine, *status, now=later)
    [cleared] = check_downlink(engine, later + datetime.timedelta(seconds=20), 300)
    assert cleared == ClearBehind("gw-cur", "recall")
    with engine.connect() as conn:
        rows = conn.execute(
            select(Alert.action, Alert.severity, Alert.message)
            .where(Alert.gateway == "gw-cur")
            .order_by(Alert.seq)
        ).all()
    assert [(r.action, r.severity) for r in rows] == [("raised", "warning"), ("cleared", "warning")]
    assert "has not applied the recall list in force for 5 min" in rows[0].message
