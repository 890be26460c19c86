"""Only a gateway speaks for itself (issue 11): ingest stores nothing from a gateway id that is not
enrolled, is revoked, or publishes under another site's topics, on both dialects.

The first message of such an id is logged and kept as a dead letter; the rest are only counted in
``unknown_gateways``.  An upgraded cloud enrols every gateway it already knew (migration 0005), so
it keeps taking their data.
"""

from __future__ import annotations

import datetime
import logging

import msgspec
import pytest

pytest.importorskip("sqlalchemy", reason="ingest tests need the [cloud] extra")

from sqlalchemy import Engine, select, text

from coldgate.cloud.alerts.cloud_stream import utc
from coldgate.cloud.db import migrate
from coldgate.cloud.db.engine import make_engine
from coldgate.cloud.db.models import (
    Alert,
    BatchRange,
    BootAnchor,
    DeadLetterBudget,
    Gateway,
    GatewayEnrolment,
    Reading,
    Sensor,
    StreamCoverage,
    UnknownGateway,
)
from coldgate.cloud.identity.enrolment import admission, enrol_gateway, revoke_gateway
from coldgate.cloud.ingest.dead_letters import NOT_ENROLLED_REASON, NOT_ENROLLED_SOURCE
from coldgate.cloud.ingest.replay import replayable
from coldgate.cloud.ingest.unknown_gateways import MAX_IDS, OTHERS
from coldgate.contract.topics import batch_topic
from tests.rig.cloud_db import RECEIVED, count, ingest
from tests.rig.cloud_db import dead_letters as letters
from tests.rig.ingest import (
    ENROLLED,
    NOW_MS,
    SITE,
    STREAM,
    announce_message,
    batch_message,
    reading,
    reading_batches,
    status_message,
)

NOW = RECEIVED
LOGGER = "coldgate.cloud.ingest.refusals"





def covered(engine: Engine, gateway: str) -> int | None:
    with engine.connect() as conn:
        return conn.execute(
            select(StreamCoverage.covered).where(
                StreamCoverage.gateway == gateway, StreamCoverage.stream == STREAM
            )
        ).scalar()


def refusal_lines(caplog: pytest.LogCaptureFixture, gateway: str) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == LOGGER
        and record.getMessage().startswith("refused a message on ")
        and f"/{gateway}/" in record.getMessage()
    ]


def test_an_unknown_gateway_stores_nothing_and_is_kept_once_then_counted(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    intruder = "gw-intruder"
    assert intruder not in ENROLLED
    caplog.set_level(logging.WARNING, logger=LOGGER)
    messages = [
        announce_message(intruder, 5000),
        status_message(intruder, ts=NOW_MS + 60_000, outbox_depth=3, last_seq=5000),
        *reading_batches(intruder, 300, 100),
        batch_message(intruder, [reading(4000)]),
        (batch_topic(SITE, intruder), b"\xff not even json"),
    ]
    outcomes = [ingest(engine, *messages[0])]
    said_at_first = len(caplog.records)
    outcomes += [ingest(engine, topic, payload) for topic, payload in messages[1:]]

    assert [o.kind for o in outcomes] == ["not_enrolled"] * len(messages)
    assert [o.dead_letters for o in outcomes] == [1] + [0] * (len(messages) - 1)
    assert all((o.new, o.ack, o.gateway) == (0, None, None) for o in outcomes)
    # Nothing of it anywhere in the data: not even a registry row, a sensor or a coverage row.
    for model in (Reading, Sensor, StreamCoverage, BatchRange, BootAnchor, Alert):
        assert count(engine, model) == 0, model.__name__
    assert count(engine, Gateway, Gateway.id == intruder) == 0

    [letter] = letters(engine)
    assert letter.reason.startswith(f"{NOT_ENROLLED_REASON} gateway {intruder} is not enrolled")
    assert (letter.gateway, letter.topic, letter.payload) == (intruder, *messages[0])
    with engine.connect() as conn:
        budget = conn.execute(select(DeadLetterBudget)).one()
        unknown = conn.execute(select(UnknownGateway)).one()
    assert (budget.source, budget.kept, budget.dropped) == (NOT_ENROLLED_SOURCE, 1, 0)
    assert (unknown.gateway, unknown.site, unknown.messages) == (intruder, SITE, len(messages))
    assert unknown.payload_bytes == sum(len(payload) for _, payload in messages)
    assert "is not enrolled" in unknown.why

    [line] = refusal_lines(caplog, intruder)
    assert line.levelno == logging.WARNING
    assert "is not enrolled" in line.getMessage() and "nothing from it is stored" in line.getMessage()
    # Only the first message said anything: every later one was only counted.
    assert [r.getMessage() for r in caplog.records[said_at_first:] if intruder in r.getMessage()] == []


def test_the_dead_letter_of_an_unknown_gateway_is_not_replayable(engine: Engine) -> None:
    intruder = "gw-stranger"
    outcome = ingest(engine, *batch_message(intruder, [reading(s) for s in range(1, 11)]))
    assert (outcome.kind, outcome.dead_letters) == ("not_enrolled", 1)
    # An enrolled gateway's refused batch (an unknown contract version) is offered for replay ...
    doc = msgspec.json.decode(batch_message("gw01", [reading(1)])[1])
    doc["v"] = 2
    assert ingest(engine, batch_topic(SITE, "gw01"), msgspec.json.encode(doc)).kind == "dead_letter"
    stranger, enrolled = letters(engine)
    assert stranger.topic.endswith("/up/batch") and not stranger.truncated
    assert stranger.reason.startswith(NOT_ENROLLED_REASON)
    # ... the unknown gateway's batch, a valid one at that, is not: it was not the gateway's to send.
    assert replayable(engine) == [enrolled.id]
    assert replayable(engine, gateway=intruder) == []


def test_a_revoked_gateway_is_refused_and_the_log_names_the_revocation(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = "gw05"
    caplog.set_level(logging.WARNING, logger=LOGGER)
    batches = list(reading_batches(gateway, 30, 10))
    assert ingest(engine, *batches[0]).new == 10
    revoked_at = NOW + datetime.timedelta(minutes=1)
    with engine.begin() as conn:
        assert revoke_gateway(conn, gateway, revoked_at)
        assert not revoke_gateway(conn, gateway, revoked_at)  # already revoked

    later = NOW + datetime.timedelta(minutes=2)
    refused = [ingest(engine, *message, now=later) for message in batches[1:]]
    status = ingest(engine, *status_message(gateway, ts=NOW_MS + 600_000, outbox_depth=77), now=later)
    assert [o.kind for o in [*refused, status]] == ["not_enrolled"] * 3
    assert count(engine, Reading) == 10
    assert covered(engine, gateway) == 10
    with engine.connect() as conn:
        row = conn.execute(select(Gateway.last_seen, Gateway.last_status).where(Gateway.id == gateway)).one()
    assert row.last_status is None  # the status after the revocation was not applied ...
    assert utc(row.last_seen) == NOW  # ... nor was it "heard"

    [letter] = letters(engine)
    assert letter.reason.startswith(f"{NOT_ENROLLED_REASON} gateway {gateway} was revoked at ")
    assert letter.payload == batches[1][1]
    [line] = refusal_lines(caplog, gateway)
    assert f"gateway {gateway} was revoked at {revoked_at.isoformat(timespec='seconds')[:16]}" in (
        line.getMessage()
    )
    with engine.connect() as conn:
        unknown = conn.execute(select(UnknownGateway)).one()
    assert (unknown.gateway, unknown.messages) == (gateway, 3)


def test_a_gateway_publishing_under_another_sites_topics_is_refused(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = "gw06"
    caplog.set_level(logging.WARNING, logger=LOGGER)
    foreign = [
        announce_message(gateway, 100, site="site2"),
        *reading_batches(gateway, 100, 50, site="site2"),
    ]
    outcomes = [ingest(engine, *message) for message in foreign]
    assert [o.kind for o in outcomes] == ["not_enrolled"] * 3
    assert count(engine, Reading) == 0 and count(engine, StreamCoverage) == 0
    assert count(engine, Gateway) == 0
    [letter] = letters(engine)
    assert f"gateway {gateway} is enrolled for site {SITE}, not site2" in letter.reason
    [line] = refusal_lines(caplog, gateway)
    assert "site2" in line.getMessage()

    # Under its own site's topics the same gateway writes as ever.
    home = [ingest(engine, *message) for message in reading_batches(gateway, 100, 50)]
    assert [o.new for o in home] == [50, 50]
    assert home[-1].ack is not None and home[-1].ack.seq == 100
    with engine.connect() as conn:
        assert conn.execute(select(Gateway.site).where(Gateway.id == gateway)).scalar_one() == SITE


def test_re_enrolling_after_a_revoke_lets_the_gateway_write_again(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = "gw07"
    caplog.set_level(logging.WARNING, logger=LOGGER)
    first, second, third = reading_batches(gateway, 300, 100)
    assert ingest(engine, *first).new == 100
    with engine.begin() as conn:
        revoke_gateway(conn, gateway, NOW)
    assert ingest(engine, *second).kind == "not_enrolled"
    assert ingest(engine, *second).kind == "not_enrolled"  # the gateway re-sends what was not acked

    with engine.begin() as conn:
        assert (
            enrol_gateway(conn, gateway, SITE, "certificate", NOW + datetime.timedelta(hours=1)) == "revoked"
        )
    again = ingest(engine, *second)
    assert (again.kind, again.new) == ("batch", 100)
    assert again.ack is not None and again.ack.seq == 200
    assert count(engine, Reading) == 200

    # Revoked once more (another time, so another reason): said again, and refused again.
    with engine.begin() as conn:
        revoke_gateway(conn, gateway, NOW + datetime.timedelta(hours=2))
    assert ingest(engine, *third).kind == "not_enrolled"
    assert count(engine, Reading) == 200 and covered(engine, gateway) == 200
    assert len(refusal_lines(caplog, gateway)) == 2
    assert [letter.payload for letter in letters(engine)] == [second[1], third[1]]
    with engine.connect() as conn:
        unknown = conn.execute(select(UnknownGateway)).one()
    assert unknown.messages == 3


def test_an_upgraded_cloud_enrols_the_gateways_it_already_knew(db_url: str) -> None:
    migrate(db_url, "0004")
    engine = make_engine(db_url, writer=True)
    try:
        first_seen = datetime.datetime(2026, 10, 1, 8, 0, tzinfo=datetime.UTC)
        with engine.begin() as conn:  # as the cloud before enrolment wrote them
            conn.execute(text("INSERT INTO sites (id) VALUES ('old-site')"))
            conn.execute(
                text(
                    "INSERT INTO gateways (id, site, first_seen, last_seen, online) "
                    "VALUES ('gw-old', 'old-site', :first, :first, :online)"
                ),
                {"first": first_seen, "online": True},
            )
            conn.execute(
                text(
                    "INSERT INTO stream_coverage (gateway, stream, site, covered, updated_at) "
                    "VALUES ('gw-old', :stream, 'old-site', 500, :first)"
                ),
                {"stream": STREAM, "first": first_seen},
            )
        migrate(db_url)
        with engine.connect() as conn:
            [enrolment] = conn.execute(select(GatewayEnrolment)).all()
        assert (enrolment.gateway, enrolment.site, enrolment.credential, enrolment.revoked_at) == (
            "gw-old",
            "old-site",
            "before-enrolment",
            None,
        )
        assert utc(enrolment.enrolled_at) == first_seen

        stored = ingest(
            engine, *batch_message("gw-old", [reading(s) for s in range(501, 601)], site="old-site")
        )
        assert (stored.kind, stored.new, stored.dead_letters) == ("batch", 100, 0)
        assert stored.ack is not None and stored.ack.seq == 600
        # A gateway the old cloud had never heard of is not enrolled by the upgrade.
        assert ingest(engine, *batch_message("gw-new", [reading(1)], site="old-site")).kind == "not_enrolled"
        assert count(engine, Reading) == 100
    finally:
        engine.dispose()


def test_past_a_thousand_unknown_ids_the_rest_are_counted_together(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with engine.begin() as conn:  # a thousand ids already counted, as a flood of made-up ids leaves
        conn.execute(
            UnknownGateway.__table__.insert(),
            [
                {
                    "gateway": f"made-up-{n:04d}",
                    "site": SITE,
                    "why": admission(conn, f"made-up-{n:04d}", SITE).refused,
                    "first_seen": NOW,
                    "last_seen": NOW,
                    "messages": 1,
                    "payload_bytes": 10,
                }
                for n in range(MAX_IDS)
            ],
        )
    late = [batch_message(gateway, [reading(1)]) for gateway in ("late-1", "late-2", "late-1")]
    counted = [ingest(engine, *message) for message in late]
    assert [(o.kind, o.dead_letters) for o in counted] == [("not_enrolled", 0)] * 3
    assert ingest(engine, *batch_message("made-up-0007", [reading(1)])).kind == "not_enrolled"
    with engine.connect() as conn:
        rows = {row.gateway: row for row in conn.execute(select(UnknownGateway))}
    assert len(rows) == MAX_IDS + 1 and "late-1" not in rows and "late-2" not in rows
    assert (rows[OTHERS].messages, rows[OTHERS].payload_bytes) == (3, sum(len(p) for _, p in late))
    assert rows["made-up-0007"].messages == 2  # an id counted before goes on being counted as itself
    assert letters(engine) == [] and caplog.records == []
    assert count(engine, Reading) == 0 and count(engine, Gateway) == 0
