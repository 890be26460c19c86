"""``stream.stuck``: a range that never comes while later ones do is raised once, and cleared once."""

from __future__ import annotations

import datetime

import msgspec
import pytest

pytest.importorskip("sqlalchemy", reason="cloud database tests need the [cloud] extra")
pytest.importorskip("apscheduler", reason="the cloud scheduler needs the [cloud] extra")

from sqlalchemy import Engine, insert, select, update

from coldgate.cloud.alerts.cloud_stream import CLOUD_STREAM
from coldgate.cloud.alerts.stream_stuck import (
    RULE,
    ClearStuck,
    OpenStuck,
    RaiseStuck,
    StreamSnapshot,
    StuckTracker,
    alert_id,
    judge,
    stuck_alert,
)
from coldgate.cloud.alerts.stream_stuck_watch import check_streams, open_stuck_alerts, stream_snapshots
from coldgate.cloud.config import CloudConfig
from coldgate.cloud.db.models import Alert, BatchRange, StreamCoverage
from coldgate.cloud.ingest.message import ingest_message
from coldgate.cloud.scheduler import CloudScheduler
from coldgate.contract.codec import validate
from coldgate.contract.items import AlertAction, Severity
from tests.rig.ingest import STREAM, batch_message, reading, status_message

GW = "gw01"
T0 = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.UTC)
AFTER = 600.0


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def snap(
    covered: int,
    first: int | None = None,
    last: int | None = None,
    stream: str = STREAM,
    heard: float | None = None,
) -> StreamSnapshot:
    """A stream of GW; ``heard``: seconds after T0 the gateway was last heard (None: never)."""
    return StreamSnapshot(GW, stream, covered, first, last, None if heard is None else at(heard))


# -- the pure half ---------------------------------------------------------------------------------


def test_a_hole_is_raised_only_after_it_has_been_seen_for_the_whole_wait() -> None:
    tracker = StuckTracker()
    assert judge([snap(100, 201, 300, heard=0)], {}, tracker, at(0), AFTER) == []
    assert judge([snap(100, 201, 300, heard=AFTER - 1)], {}, tracker, at(AFTER - 1), AFTER) == []
    (action,) = judge([snap(100, 201, 300, heard=AFTER)], {}, tracker, at(AFTER), AFTER)
    assert isinstance(action, RaiseStuck)
    assert (action.missing_first, action.missing_last, action.pending_last) == (101, 200, 300)
    assert action.stuck_s == AFTER


def test_a_hole_that_moves_starts_its_wait_again() -> None:
    """The express batch that overtook a long backlog: covered moves on, so nothing is stuck."""
    tracker = StuckTracker()
    judge([snap(100, 201, 300, heard=0)], {}, tracker, at(0), AFTER)
    moved = judge([snap(150, 201, 300, heard=AFTER)], {}, tracker, at(AFTER), AFTER)
    assert moved == [], "covered moved: a new wait"
    assert judge([snap(300, heard=2 * AFTER)], {}, tracker, at(2 * AFTER), AFTER) == []
    assert tracker.since == {}, "a stream without a hole is forgotten"


def test_an_offline_gateways_hole_waits_until_it_has_been_heard_for_the_whole_wait() -> None:
    """The link dropped right after an express batch: the backlog comes on reconnect, not stuck."""
    tracker = StuckTracker()
    for t in (0, AFTER, 10 * AFTER):  # heard at 0, then unheard: it cannot re-send anything
        assert judge([snap(100, 201, 300, heard=0)], {}, tracker, at(t), AFTER) == []
    # Back after the long outage: the wait starts again, so the re-sent backlog has time to arrive.
    back = 20 * AFTER
    assert judge([snap(100, 201, 300, heard=back)], {}, tracker, at(back), AFTER) == []
    almost = back + AFTER - 10
    assert judge([snap(100, 201, 300, heard=almost)], {}, tracker, at(almost), AFTER) == []
    (raised,) = judge([snap(100, 201, 300, heard=back + AFTER)], {}, tracker, at(back + AFTER), AFTER)
    assert isinstance(raised, RaiseStuck) and raised.stuck_s == AFTER
    never = StuckTracker()
    for t in (0, 10 * AFTER):
        assert judge([snap(100, 201, 300)], {}, never, at(t), AFTER) == [], "a gateway never heard"


def test_an_open_alert_is_not_raised_again_and_clears_when_covered_passes_it() -> None:
    opened = OpenStuck(GW, STREAM, alert_id(STREAM, 101), 101, 200)
    tracker = StuckTracker()
    for t in (0, AFTER, 3 * AFTER):
        assert judge([snap(100, 201, 300, heard=t)], {(GW, STREAM): opened}, tracker, at(t), AFTER) == []
    (clear,) = judge([snap(300, heard=4 * AFTER)], {(GW, STREAM): opened}, tracker, at(4 * AFTER), AFTER)
    assert isinstance(clear, ClearStuck) and clear.open == opened and "101..200 arrived" in clear.how


def test_a_partial_fill_clears_and_the_rest_waits_as_a_new_hole() -> None:
    opened = OpenStuck(GW, STREAM, alert_id(STREAM, 101), 101, 200)
    tracker = StuckTracker()
    actions = judge([snap(150, 201, 300, heard=0)], {(GW, STREAM): opened}, tracker, at(0), AFTER)
    assert [type(a) for a in actions] == [ClearStuck]
    assert "acknowledged up to 150" in actions[0].how  # type: ignore[union-attr]
    (again,) = judge([snap(150, 201, 300, heard=AFTER)], {}, tracker, at(AFTER), AFTER)
    assert isinstance(again, RaiseStuck) and again.missing_first == 151
    assert alert_id(STREAM, 151) != opened.alert_id


def test_alert_rows_follow_the_contract_at_the_largest_ids_and_seqs() -> None:
    stream = "a" * 64
    big = 2**62
    raise_ = RaiseStuck(
        gateway="g" * 64,
        stream=stream,
        covered=big,
        pending_first=big + 10,
        pending_last=big + 20,
        stuck_s=AFTER,
    )
    raised = stuck_alert(raise_, 7, at(AFTER))
    validate(msgspec.structs.replace(raised, boot="c0ffee00"))  # "cloud" is kept apart from edge boots
    assert raised.action is AlertAction.RAISED and raised.severity is Severity.WARNING and raised.rule == RULE
    assert raised.evidence.details["missing_first"] == big + 1 and raised.evidence.details["stream"] == stream
    assert len(raised.alert_id) <= 64
    opened = OpenStuck(raise_.gateway, stream, raised.alert_id, big + 1, big + 9)
    cleared = stuck_alert(ClearStuck(opened, big + 9, "seqs arrived"), 8, at(AFTER + 1))
    validate(msgspec.structs.replace(cleared, boot="c0ffee00"))
    assert (cleared.alert_id, cleared.action) == (raised.alert_id, AlertAction.CLEARED)


# -- against the database, with ingest making the hole ----------------------------------------------


def ingest(engine: Engine, first: int, last: int, t: float = 0) -> None:
    """Batch ``first..last`` received ``t`` seconds after T0 (the gateway is heard then)."""
    topic, payload = batch_message(GW, [reading(seq) for seq in range(first, last + 1)])
    with engine.begin() as conn:
        outcome = ingest_message(conn, topic, payload, at(t))
    assert outcome.kind == "batch" and outcome.dead_letters == 0


def heard(engine: Engine, t: float) -> None:
    """A heartbeat ``t`` seconds after T0."""
    topic, payload = status_message(GW, ts=int(at(t).timestamp() * 1000))
    with engine.begin() as conn:
        assert ingest_message(conn, topic, payload, at(t)).kind == "status"


def stuck_rows(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        query = (
            select(Alert.alert_id, Alert.action, Alert.message)
            .where(Alert.gateway == GW, Alert.stream == CLOUD_STREAM, Alert.rule == RULE)
            .order_by(Alert.seq)
        )
        return [tuple(row) for row in conn.execute(query)]  # type: ignore[misc]


def test_ingest_hole_raises_once_survives_a_restart_and_clears_when_filled(engine: Engine) -> None:
    ingest(engine, 1, 100)
    ingest(engine, 201, 300)  # 101..200 never came (yet)
    with engine.connect() as conn:
        assert stream_snapshots(conn) == [StreamSnapshot(GW, STREAM, 100, 201, 300, at(0))]

    tracker = StuckTracker()
    assert check_streams(engine, at(0), tracker, AFTER) == []
    heard(engine, AFTER - 1)
    assert check_streams(engine, at(AFTER - 1), tracker, AFTER) == []
    assert check_streams(engine, at(3 * AFTER), tracker, AFTER) == [], "unheard since: it may re-send"
    heard(engine, 3 * AFTER)
    assert check_streams(engine, at(3 * AFTER), tracker, AFTER) == [], "heard again: the wait restarts"
    heard(engine, 4 * AFTER)
    (raised,) = check_streams(engine, at(4 * AFTER), tracker, AFTER)
    assert isinstance(raised, RaiseStuck) and (raised.missing_first, raised.missing_last) == (101, 200)
    assert check_streams(engine, at(4 * AFTER + 10), tracker, AFTER) == [], "raised once"
    ((raised_id, action, message),) = stuck_rows(engine)
    assert action == "raised" and "seqs 101..200" in message and "held at 100" in message

    # A cloud restart forgets the tracker; the open alert in the database keeps it from a second raise.
    restarted = StuckTracker()
    for t in (5 * AFTER, 6 * AFTER, 7 * AFTER):
        heard(engine, t)
        assert check_streams(engine, at(t), restarted, AFTER) == []
    with engine.connect() as conn:
        assert open_stuck_alerts(conn, [GW]) == {(GW, STREAM): OpenStuck(GW, STREAM, raised_id, 101, 200)}

    ingest(engine, 101, 200, t=7.5 * AFTER)  # the gateway re-sent it after all
    (cleared,) = check_streams(engine, at(8 * AFTER), restarted, AFTER)
    assert isinstance(cleared, ClearStuck)
    assert [(i, a) for i, a, _ in stuck_rows(engine)] == [(raised_id, "raised"), (raised_id, "cleared")]
    assert check_streams(engine, at(9 * AFTER), restarted, AFTER) == []
    with engine.connect() as conn:
        assert open_stuck_alerts(conn, [GW]) == {}
        seqs = conn.execute(
            select(Alert.seq).where(Alert.stream == CLOUD_STREAM).order_by(Alert.seq)
        ).scalars()
        assert list(seqs) == [1, 2], "numbered in the cloud stream like the unheard-gateway watch's"


def test_a_hole_filled_before_the_wait_raises_nothing(engine: Engine) -> None:
    ingest(engine, 1, 100)
    ingest(engine, 201, 300)
    tracker = StuckTracker()
    check_streams(engine, at(0), tracker, AFTER)
    ingest(engine, 101, 200, t=AFTER / 2)
    heard(engine, AFTER * 2)
    assert check_streams(engine, at(AFTER * 2), tracker, AFTER) == []
    assert stuck_rows(engine) == []


def test_the_scheduler_runs_the_stuck_stream_check_with_the_configured_wait(engine: Engine) -> None:
    ingest(engine, 1, 100)
    ingest(engine, 201, 300)
    now = [at(0)]
    config = CloudConfig()
    assert config.gateways.stream_stuck_after_s == 600.0
    scheduler = CloudScheduler(engine, config, clock=lambda: now[0])
    assert scheduler.check_streams_now() == []
    heard(engine, config.gateways.stream_stuck_after_s)
    now[0] = at(config.gateways.stream_stuck_after_s)
    (raised,) = scheduler.check_streams_now()
    assert isinstance(raised, RaiseStuck)
    assert [a for _, a, _ in stuck_rows(engine)] == ["raised"]


def test_ranges_left_below_covered_do_not_hide_a_hole_beyond_it(engine: Engine) -> None:
    """Adoption (a stream first seen above seq 1) can leave old ranges at or below covered."""
    ingest(engine, 1, 10)
    with engine.begin() as conn:
        conn.execute(update(StreamCoverage).values(covered=5000))
        conn.execute(
            insert(BatchRange),
            [
                {"gateway": GW, "stream": STREAM, "first_seq": 4990, "last_seq": 4990},
                {"gateway": GW, "stream": STREAM, "first_seq": 6000, "last_seq": 6010},
            ],
        )
    with engine.connect() as conn:
        (only,) = stream_snapshots(conn)
    assert (only.covered, only.pending_first, only.pending_last) == (5000, 6000, 6010)
