"""The sequence window (issue 11): a batch is stored only if its first seq lies within the window
past what the stream covered or its gateway announced, so a forgery far ahead cannot take the
numbers the real gateway will use later.

The pure rules (``reach``, ``refusal``) are tested as properties; the rest on both dialects,
including the issue's trial: a forged reading published 300 ahead of a real stream.
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("sqlalchemy", reason="ingest tests need the [cloud] extra")

from sqlalchemy import Engine, select

from coldgate.cloud.alerts.cloud_stream import CLOUD_STREAM
from coldgate.cloud.alerts.ingest_alerts import AHEAD_RULE, CONFLICT_RULE
from coldgate.cloud.db.models import Alert, BatchRange, Reading, StreamCoverage
from coldgate.cloud.ingest.dead_letters import CONFLICT_REASON
from coldgate.cloud.ingest.group import Group
from coldgate.cloud.ingest.limits import IngestLimits
from coldgate.cloud.ingest.message import ingest_message
from coldgate.cloud.ingest.replay import replayable
from coldgate.cloud.ingest.sequence_window import AHEAD_REASON, reach, refusal
from coldgate.contract import examples
from coldgate.contract.items import Severity
from tests.rig.cloud_db import RECEIVED, count, ingest
from tests.rig.cloud_db import dead_letters as letters
from tests.rig.ingest import (
    NOW_MS,
    STREAM,
    announce_message,
    batch_message,
    reading,
    reading_batches,
    status_message,
)

NOW = RECEIVED
WINDOW = IngestLimits().window
OTHER_BOOT = "0123456789abcdef0123456789abcdef"

# -- the rules, pure ---------------------------------------------------------------------------------

seqs = st.integers(min_value=0, max_value=100_000)
ranges = st.lists(
    st.tuples(st.integers(min_value=1, max_value=2_000), st.integers(min_value=0, max_value=300)).map(
        lambda pair: (pair[0], pair[0] + pair[1])
    ),
    max_size=12,
)


def reference_reach(covered: int, announced: int, joined: list[tuple[int, int]]) -> int:
    """The same rule, written as a fixpoint: extend through any range that starts at or below top + 1."""
    top = max(covered, announced)
    moved = True
    while moved:
        moved = False
        for low, high in joined:
            if low <= top + 1 and high > top:
                top, moved = high, True
    return top


@given(seqs, seqs, ranges)
def test_reach_never_falls_below_what_was_covered_or_announced(
    covered: int, announced: int, joined: list[tuple[int, int]]
) -> None:
    assert reach(covered, announced, joined) >= max(covered, announced)
    assert reach(covered, announced, []) == max(covered, announced)


@given(seqs, seqs, ranges)
def test_joined_ranges_extend_the_reach_only_when_contiguous(
    covered: int, announced: int, joined: list[tuple[int, int]]
) -> None:
    top = reach(covered, announced, joined)
    assert top == reference_reach(covered, announced, joined)
    # Nothing joins past the top: every range either ends below it or starts after a hole.
    assert all(high <= top or low > top + 1 for low, high in joined)
    # The top is where it started, or the end of a range that was joined.
    assert top == max(covered, announced) or top in {high for _, high in joined}
    # The order the ranges were committed in does not matter.
    assert reach(covered, announced, list(reversed(joined))) == top


@given(
    seqs, seqs, ranges, st.integers(min_value=0, max_value=1_000), st.integers(min_value=1, max_value=10_000)
)
def test_a_batch_starting_at_most_one_past_covered_is_never_refused(
    covered: int, announced: int, joined: list[tuple[int, int]], back: int, window: int
) -> None:
    first_seq = max(1, covered + 1 - back)
    top = reach(covered, announced, joined)
    assert refusal(first_seq, first_seq, 1, top, window, covered=covered, announced=announced) is None
    # Nor is a run of items without a gap from there, however long.
    items = window + back + 1
    last_seq = first_seq + items - 1
    assert refusal(first_seq, last_seq, items, top, window, covered=covered, announced=announced) is None


@given(
    seqs, seqs, st.integers(min_value=1, max_value=10_000), st.integers(min_value=-20_000, max_value=20_000)
)
def test_refused_exactly_beyond_the_window_and_saying_why(
    covered: int, announced: int, window: int, offset: int
) -> None:
    top = reach(covered, announced, [])
    first_seq = max(1, top + window + offset)
    why = refusal(first_seq, first_seq, 1, top, window, covered=covered, announced=announced)
    assert (why is None) == (first_seq <= top + window)
    if why is not None:
        assert why.startswith(AHEAD_REASON)
        assert f"first_seq {first_seq} is more than {window} past {top}" in why
        assert f"(covered {covered}, announced last_seq {announced})" in why


# -- on the database ----------------------------------------------------------------------------------




def covered(engine: Engine, gateway: str) -> int | None:
    with engine.connect() as conn:
        return conn.execute(
            select(StreamCoverage.covered).where(
                StreamCoverage.gateway == gateway, StreamCoverage.stream == STREAM
            )
        ).scalar()


def stored_values(engine: Engine, gateway: str, *seq: int) -> dict[int, float | None]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Reading.seq, Reading.value).where(Reading.gateway == gateway, Reading.seq.in_(seq))
        ).all()
    return {row.seq: row.value for row in rows}



def alerts(engine: Engine, gateway: str, rule: str) -> list:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(Alert).where(Alert.gateway == gateway, Alert.rule == rule).order_by(Alert.seq)
            )
        )


def real_stream(engine: Engine, gateway: str, upto: int) -> None:
    """A real gateway's stream stored up to ``upto``, with the status announcing it."""
    for message in reading_batches(gateway, upto, 100):
        ingest(engine, *message)
    ingest(engine, *status_message(gateway, ts=NOW_MS, last_seq=upto))
    assert covered(engine, gateway) == upto


def real_batches(gateway: str, first: int, last: int, per_batch: int) -> list[tuple[str, bytes]]:
    """The real gateway's readings ``first..last``, as ``reading_batches`` numbers them."""
    return [
        batch_message(
            gateway,
            [reading(s, sensor=f"s{s % 10:02d}") for s in range(low, min(last, low + per_batch - 1) + 1)],
        )
        for low in range(first, last + 1, per_batch)
    ]


N = 1000


def test_trial_a_forgery_300_ahead_is_refused_and_the_real_item_is_stored(engine: Engine) -> None:
    gateway = "gw11"
    real_stream(engine, gateway, N)
    forged_value = -40.0
    assert forged_value != reading(N + 300).value
    forgery = batch_message(gateway, [reading(N + 300, sensor=f"s{(N + 300) % 10:02d}", value=forged_value)])

    refused = ingest(engine, *forgery)
    assert (refused.kind, refused.new, refused.ahead, refused.dead_letters, refused.ack) == (
        "batch",
        0,
        1,
        1,
        None,
    )
    assert stored_values(engine, gateway, N + 300) == {}
    assert count(engine, BatchRange) == 0
    [letter] = letters(engine)
    assert letter.reason.startswith(AHEAD_REASON)
    assert f"first_seq {N + 300} is more than {WINDOW} past {N}" in letter.reason
    assert (letter.gateway, letter.path, letter.payload) == (gateway, "$.first_seq", forgery[1])
    assert letter.batch["first_seq"] == N + 300 and letter.batch["stream"] == STREAM
    [alert] = alerts(engine, gateway, AHEAD_RULE)
    assert (alert.alert_id, alert.action, alert.stream, alert.severity) == (
        f"{AHEAD_RULE}.{STREAM}",
        "raised",
        CLOUD_STREAM,
        str(Severity.WARNING),
    )
    assert str(N + 300) in alert.message
    assert replayable(engine) == []

    # The forger insists: the same batch again is a repeat; another one is kept; one alert all along.
    ingest(engine, *forgery)
    ingest(engine, *batch_message(gateway, [reading(N + 900, value=forged_value)]))
    assert [letter.repeats for letter in letters(engine)] == [1, 0]
    assert len(alerts(engine, gateway, AHEAD_RULE)) == 1

    # The real gateway's items arrive in order: every one stored, N + 300 with its own value.
    outcomes = [ingest(engine, *message) for message in real_batches(gateway, N + 1, N + 300, 100)]
    assert [(o.new, o.conflicts, o.ahead, o.dead_letters) for o in outcomes] == [(100, 0, 0, 0)] * 3
    assert outcomes[-1].ack is not None and outcomes[-1].ack.seq == N + 300
    assert stored_values(engine, gateway, N + 300) == {N + 300: reading(N + 300).value}
    assert covered(engine, gateway) == N + 300
    assert count(engine, Reading) == N + 300
    assert len(letters(engine)) == 2
    assert replayable(engine) == []


def test_a_forgery_inside_the_window_is_stored_and_the_real_items_raise_one_conflict(engine: Engine) -> None:
    gateway = "gw12"
    real_stream(engine, gateway, N)
    forged = [reading(s, sensor=f"s{s % 10:02d}", value=99.0) for s in range(N + 100, N + 105)]
    taken = ingest(engine, *batch_message(gateway, forged))
    assert (taken.new, taken.ahead, taken.dead_letters) == (5, 0, 0)
    assert taken.ack is not None and taken.ack.seq == N  # stands apart: the ack stays where it was
    assert stored_values(engine, gateway, N + 100) == {N + 100: 99.0}

    outcomes = [ingest(engine, *message) for message in real_batches(gateway, N + 1, N + 300, 50)]
    assert [o.conflicts for o in outcomes] == [0, 1, 4, 0, 0, 0]
    assert outcomes[-1].ack is not None and outcomes[-1].ack.seq == N + 300
    # The gateway missed an ack and sends the batch with four conflicting items again.
    again = ingest(engine, *real_batches(gateway, N + 101, N + 150, 50)[0])
    assert (again.conflicts, again.new) == (4, 0)

    conflicts = letters(engine)
    assert len(conflicts) == 5 and all(letter.reason.startswith(CONFLICT_REASON) for letter in conflicts)
    assert sorted(msgspec.json.decode(letter.payload)["seq"] for letter in conflicts) == list(
        range(N + 100, N + 105)
    )
    assert [letter.repeats for letter in conflicts] == [0, 1, 1, 1, 1]
    assert {msgspec.json.decode(letter.payload)["value"] for letter in conflicts} == {
        reading(s).value for s in range(N + 100, N + 105)
    }
    [alert] = alerts(engine, gateway, CONFLICT_RULE)
    assert (alert.alert_id, alert.action, alert.severity) == (
        f"{CONFLICT_RULE}.{STREAM}",
        "raised",
        str(Severity.CRITICAL),
    )
    assert stored_values(engine, gateway, N + 100) == {N + 100: 99.0}  # the stored item stays
    assert covered(engine, gateway) == N + 300
    assert replayable(engine) == []


def test_trial_a_forgery_far_ahead_in_a_thinned_range_is_refused_too(engine: Engine) -> None:
    gateway = "gw24"
    real_stream(engine, gateway, N)
    # One reading at N + 300 in a batch whose range starts right after the stream, as a thinned one.
    forgery = batch_message(gateway, [reading(N + 300, sensor="s00", value=-40.0)], first_seq=N + 1)
    refused = ingest(engine, *forgery)
    # Before, it was stored, the stream covered to N + 300 and that acknowledged to the gateway,
    # which had not numbered it yet. A real gateway never sends a range past what it announced:
    # it is refused like the same reading in a batch of its own.
    assert (refused.new, refused.ahead) == (0, 1)
    assert stored_values(engine, gateway, N + 300) == {}
    assert covered(engine, gateway) == N
    assert refused.ack is None or refused.ack.seq == N


def test_a_forgery_of_another_kind_under_a_real_number_is_a_conflict_too(engine: Engine) -> None:
    gateway = "gw13"
    real_stream(engine, gateway, N)
    forged = msgspec.structs.replace(examples.ALERT, seq=N + 50, ts=NOW_MS + (N + 50) * 1000)
    assert ingest(engine, *batch_message(gateway, [forged])).new == 1
    outcomes = [ingest(engine, *message) for message in real_batches(gateway, N + 1, N + 100, 100)]
    # Before, the real reading was stored beside the forged alert: two items under one seq, no alert.
    # As for one kind: whoever stores a seq first owns it, so the real reading is the newcomer, a
    # conflict for a person (dead-lettered, stream.conflict raised), whatever the kinds.
    assert outcomes[0].conflicts == 1
    assert stored_values(engine, gateway, N + 50) == {}
    assert len(alerts(engine, gateway, CONFLICT_RULE)) == 1


def test_an_announced_backlog_may_arrive_in_any_order(engine: Engine) -> None:
    gateway, silent = "gw14", "gw15"
    ingest(engine, *announce_message(gateway, N))
    outcomes = [ingest(engine, *message) for message in reversed(list(reading_batches(gateway, N, 100)))]
    assert [(o.new, o.ahead, o.dead_letters) for o in outcomes] == [(100, 0, 0)] * 10
    assert [o.ack for o in outcomes[:-1]] == [None] * 9
    assert outcomes[-1].ack is not None and outcomes[-1].ack.seq == N
    assert covered(engine, gateway) == N and count(engine, BatchRange) == 0

    # Without the status, the same order is refused: 901 is far past nothing at all.
    unannounced = ingest(engine, *list(reading_batches(silent, N, 100))[-1])
    assert (unannounced.new, unannounced.ahead) == (0, 100)
    [letter] = letters(engine)
    assert letter.gateway == silent and "(covered 0, announced last_seq 0)" in letter.reason


def test_a_status_of_another_boot_still_announces(engine: Engine) -> None:
    # A restarted gateway keeps its outbox and stream: batches of the old boot still on their way
    # when the new boot's status is stored lie inside what it announces.
    gateway = "gw16"
    ingest(engine, *status_message(gateway, ts=NOW_MS, boot=OTHER_BOOT, last_seq=N))
    middle = batch_message(gateway, [reading(s) for s in range(501, 601)])
    assert ingest(engine, *middle).new == 100
    # Past the announcement, it is refused all the same.
    far = batch_message(gateway, [reading(s) for s in range(N + 300, N + 310)])
    refused = ingest(engine, *far)
    assert (refused.new, refused.ahead) == (0, 10)
    assert f"(covered 0, announced last_seq {N})" in letters(engine)[-1].reason


def test_ranges_committed_in_the_same_transaction_extend_the_window_only_when_they_join(
    engine: Engine,
) -> None:
    joined, holed = "gw17", "gw18"
    with engine.begin() as conn:
        group = Group(limits=IngestLimits(window=WINDOW))
        outcomes = [ingest_message(conn, *m, NOW, group=group) for m in reading_batches(joined, 600, 200)]
        outcomes += [
            ingest_message(
                conn, *batch_message(holed, [reading(s) for s in range(low, low + 101)]), NOW, group=group
            )
            for low in (1, 200, 400)
        ]
        acks = group.finish(conn, NOW)
    # 401 is 145 past 256 of the first batch, inside only because 1..400 were committed just before.
    assert [o.new for o in outcomes[:3]] == [200, 200, 200]
    assert acks[(joined, STREAM)].seq == 600
    # 200..300 stands apart from 1..101, so 400 is measured from 101 and refused.
    assert [(o.new, o.ahead) for o in outcomes[3:]] == [(101, 0), (101, 0), (0, 101)]
    assert acks[(holed, STREAM)].seq == 101
    [letter] = letters(engine)
    assert letter.gateway == holed and f"first_seq 400 is more than {WINDOW} past 101" in letter.reason


def test_a_wider_window_takes_what_the_default_refuses(engine: Engine) -> None:
    gateway = "gw19"
    far = batch_message(gateway, [reading(s) for s in range(901, 911)])
    with engine.begin() as conn:
        assert ingest_message(conn, *far, NOW).ahead == 10
    with engine.begin() as conn:
        outcome = ingest_message(conn, *far, NOW, limits=IngestLimits(window=1000))
    assert (outcome.new, outcome.ahead) == (10, 0)


def test_deferring_writes_nothing(engine: Engine) -> None:
    gateway = "gw20"
    with engine.begin() as conn:
        outcome = ingest_message(conn, *announce_message(gateway, 10), NOW)
        outcome = ingest_message(conn, *batch_message(gateway, [reading(5000)]), NOW, defer_ahead=True)
    assert (outcome.kind, outcome.new, outcome.ahead, outcome.dead_letters) == ("deferred", 0, 0, 0)
    assert letters(engine) == [] and count(engine, Alert) == 0 and count(engine, Reading) == 0
