"""The outbox as sources and the uplink see it: put, group commit, read_batch, ack, close."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import msgspec
import pytest

from coldgate.contract.codec import decode_item
from coldgate.contract.items import Reading
from coldgate.contract.units import Quantity
from coldgate.gateway.buffer.committer import ACK_DELAY_S
from coldgate.gateway.buffer.lanes import PRIORITY, ROUTINE
from coldgate.gateway.buffer.outbox import AckAheadError, ItemRefused, Outbox, OutboxError
from coldgate.gateway.buffer.outbox_db import OutboxDb
from coldgate.gateway.observations import UNSEQUENCED
from tests.rig.clocks import FakeClock
from tests.rig.items import T0, alert, priority_items, reading
from tests.rig.outbox import config, open_outbox, stored


def wait_until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


# -- put and group commit -------------------------------------------------------------------------


def test_items_are_numbered_in_put_order_and_stored_with_their_seq(tmp_path: Path) -> None:
    items = [reading(1.0), alert(), reading(2.0, quantity=Quantity.HUMIDITY), *priority_items()]
    with open_outbox(tmp_path) as outbox:
        for item in items:
            outbox.put(item)
        outbox.flush()
        assert outbox.committed_seq == len(items)
    rows = stored(tmp_path)
    assert [seq for seq, *_ in rows] == list(range(1, len(items) + 1))
    for (seq, lane, kind, item), original in zip(rows, items, strict=True):
        assert item == msgspec.structs.replace(original, seq=seq)
        assert (lane, kind) == ((ROUTINE, "reading") if isinstance(original, Reading) else (PRIORITY, kind))


def test_many_puts_are_committed_in_few_transactions(tmp_path: Path) -> None:
    with open_outbox(tmp_path, commit_interval_ms=100, commit_max_items=1000) as outbox:
        started = time.monotonic()
        for i in range(3000):
            outbox.put(reading(float(i % 50)))
        putting_s = time.monotonic() - started
        outbox.flush()
        assert outbox.committed_seq == 3000
        # 3 full groups, plus at most one smaller one per interval that went by while putting
        # (a slow machine puts for longer), plus the flush: far fewer than one per put.
        assert outbox.status().transactions <= 3 + int(putting_s / 0.1) + 2


def test_an_item_after_a_quiet_interval_commits_at_once_and_the_next_wait_for_the_intervals_end(
    tmp_path: Path,
) -> None:
    """The leading edge: a reading a second is durable at once, not 200 ms later; readings within an
    interval of a commit still wait, so a burst costs no more transactions."""
    with open_outbox(tmp_path, commit_interval_ms=10_000, commit_max_items=1000) as outbox:
        before = outbox.status().transactions
        outbox.put(reading())
        wait_until(lambda: outbox.committed_seq == 1, timeout=5)  # long before the 10 s interval
        outbox.put(reading())
        outbox.put(reading())
        assert outbox.committed_seq == 1 and outbox.pending() == 2  # not yet: within the interval
        outbox.flush()
        assert outbox.committed_seq == 3 and outbox.status().transactions - before == 2


def test_a_group_waits_for_the_interval_from_its_first_item_in_the_reference_mode(tmp_path: Path) -> None:
    """``leading_edge=False`` (the benchmark's reference): every group waits its whole interval."""
    with open_outbox(tmp_path, commit_interval_ms=2000, commit_max_items=1000, leading_edge=False) as outbox:
        outbox.put(reading())
        outbox.put(reading())
        assert outbox.committed_seq == 0 and outbox.pending() == 2  # not yet: the group is still open
        wait_until(lambda: outbox.committed_seq == 2, timeout=10)


def test_a_full_group_commits_without_waiting_for_the_interval(tmp_path: Path) -> None:
    with open_outbox(tmp_path, commit_interval_ms=10_000, commit_max_items=100) as outbox:
        outbox.put(reading())
        wait_until(lambda: outbox.committed_seq == 1)  # the leading edge: the interval starts now
        for _ in range(250):
            outbox.put(reading())
        wait_until(lambda: outbox.committed_seq == 201)
        assert outbox.pending() == 50
        outbox.flush()
        assert outbox.committed_seq == 251


def test_an_alert_is_committed_at_once_with_the_readings_waiting_before_it(tmp_path: Path) -> None:
    """Readings wait for the group commit; an alert does not, and takes what waits before it along."""
    with open_outbox(tmp_path, commit_interval_ms=10_000, commit_max_items=1000) as outbox:
        outbox.put(reading())
        wait_until(lambda: outbox.committed_seq == 1)  # the leading edge: the interval starts now
        outbox.put(reading())
        assert outbox.pending() == 1
        outbox.put(alert())
        wait_until(lambda: outbox.committed_seq == 3, timeout=5)  # long before the 10 s interval


def test_an_acks_deletes_ride_on_the_next_group_or_wait_a_second(tmp_path: Path) -> None:
    """No transaction of its own for an ack a group follows; one for an ack nothing follows, a second
    (``ACK_DELAY_S``) later, not at once."""
    with open_outbox(tmp_path, commit_interval_ms=50) as outbox:
        for _ in range(5):
            outbox.put(reading())
        outbox.flush()
        before = outbox.status().transactions
        assert outbox.ack(3) is True
        outbox.put(reading())
        outbox.flush()
        assert [seq for seq, *_ in stored(tmp_path)] == [4, 5, 6]
        assert outbox.status().transactions - before == 1  # the group's, carrying the deletes
        acked_at = time.monotonic()
        assert outbox.ack(6) is True
        wait_until(lambda: outbox.depth() == 0)  # the depth leaves acknowledged items out at once
        wait_until(lambda: stored(tmp_path) == [], timeout=10)
        assert time.monotonic() - acked_at >= ACK_DELAY_S * 0.9  # deleted a second later, not at once
        assert outbox.status().transactions - before == 2


def test_close_commits_what_is_still_queued(tmp_path: Path) -> None:
    outbox = open_outbox(tmp_path, commit_interval_ms=10_000)
    for value in range(7):
        outbox.put(reading(float(value)))
    outbox.close()
    assert [seq for seq, *_ in stored(tmp_path)] == list(range(1, 8))


def test_concurrent_sources_keep_each_sensors_order(tmp_path: Path) -> None:
    def source(sensor: str) -> None:
        for value in range(500):
            outbox.put(reading(float(value), sensor=sensor))

    with open_outbox(tmp_path, commit_interval_ms=1) as outbox:
        threads = [threading.Thread(target=source, args=(f"cr{n}-t01",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        outbox.flush()
    by_sensor: dict[str, list[float]] = {}
    for _, _, _, item in stored(tmp_path):
        assert isinstance(item, Reading)
        by_sensor.setdefault(item.sensor, []).append(item.value or 0.0)
    assert by_sensor == {f"cr{n}-t01": [float(v) for v in range(500)] for n in range(4)}


# -- refusing bad items -----------------------------------------------------------------------------

REFUSED = [
    # (what is wrong, the item, the field path in the error)
    ("sensor id with a space", reading(sensor="cold room 1"), "$.sensor"),
    ("time before the epoch", msgspec.structs.replace(reading(), ts=-5), "$.ts"),
    ("boot id not hex", msgspec.structs.replace(reading(), boot="BOOT"), "$.boot"),
    ("alert id with a slash", msgspec.structs.replace(alert(), alert_id="gw01/a/1"), "$.alert_id"),
    ("already numbered", msgspec.structs.replace(reading(), seq=41), "$.seq"),
]


@pytest.mark.parametrize(("what", "item", "path"), REFUSED, ids=[case[0] for case in REFUSED])
def test_a_bad_item_is_refused_at_put_and_its_neighbours_are_kept(
    tmp_path: Path, what: str, item: object, path: str
) -> None:
    with open_outbox(tmp_path) as outbox:
        outbox.put(reading(1.0))
        with pytest.raises(ItemRefused) as refused:
            outbox.put(item)  # type: ignore[arg-type]
        outbox.put(reading(2.0))
        outbox.flush()
    assert refused.value.path == path
    assert str(refused.value).startswith("outbox refused ") and path in str(refused.value)
    assert [(seq, item.value) for seq, _, _, item in stored(tmp_path)] == [(1, 1.0), (2, 2.0)]  # type: ignore[attr-defined]


def test_something_that_is_not_an_item_is_a_type_error(tmp_path: Path) -> None:
    with open_outbox(tmp_path) as outbox, pytest.raises(TypeError, match="not dict"):
        outbox.put({"kind": "reading"})  # type: ignore[arg-type]


def test_refusal_names_the_item(tmp_path: Path) -> None:
    with open_outbox(tmp_path) as outbox, pytest.raises(ItemRefused) as refused:
        outbox.put(reading(sensor="cold room 1"))
    assert str(refused.value).startswith("outbox refused reading cold room 1/temperature: $.sensor: ")


# -- read_batch -------------------------------------------------------------------------------------


def test_read_batch_covers_from_after_seq_and_keeps_to_its_limits(tmp_path: Path) -> None:
    with open_outbox(tmp_path) as outbox:
        assert outbox.read_batch(0) is None
        for value in range(10):
            outbox.put(reading(float(value)))
        outbox.flush()
        chunk = outbox.read_batch(0, max_items=4)
        assert chunk is not None and (chunk.first_seq, chunk.last_seq, len(chunk.items)) == (1, 4, 4)
        assert decode_item(chunk.items[0]).seq == 1
        one = len(chunk.items[0])
        chunk = outbox.read_batch(4, max_bytes=2 * one + 1)
        assert chunk is not None and (chunk.first_seq, chunk.last_seq) == (5, 6)
        chunk = outbox.read_batch(6, max_bytes=1)  # one item even when it alone is over the limit
        assert chunk is not None and (chunk.first_seq, chunk.last_seq) == (7, 7)
        assert outbox.read_batch(10) is None


def test_read_batch_priority_lane_never_spans_a_reading(tmp_path: Path) -> None:
    with open_outbox(tmp_path) as outbox:
        for item in [reading(), alert(1), alert(2), reading(), alert(3), reading()]:
            outbox.put(item)
        outbox.flush()
        first = outbox.read_batch(0, lane=PRIORITY)
        assert first is not None and (first.first_seq, first.last_seq, len(first.items)) == (2, 3, 2)
        second = outbox.read_batch(first.last_seq, lane=PRIORITY)
        assert second is not None and (second.first_seq, second.last_seq) == (5, 5)
        assert outbox.read_batch(5, lane=PRIORITY) is None
        everything = outbox.read_batch(0)
        assert everything is not None and (everything.first_seq, everything.last_seq) == (1, 6)


def test_read_batch_refuses_a_routine_only_lane_and_silly_limits(tmp_path: Path) -> None:
    with open_outbox(tmp_path) as outbox:
        with pytest.raises(ValueError, match="declare the priority items in its range dropped"):
            outbox.read_batch(0, lane=ROUTINE)
        with pytest.raises(ValueError, match="max_items must be"):
            outbox.read_batch(0, max_items=0)


# -- acknowledgements ------------------------------------------------------------------------------


def test_ack_is_cumulative_idempotent_and_ignores_stale_ones(tmp_path: Path) -> None:
    with open_outbox(tmp_path) as outbox:
        for value in range(10):
            outbox.put(reading(float(value)))
        outbox.flush()
        assert outbox.ack(6) is True
        chunk = outbox.read_batch(0)  # acknowledged items are skipped even before they are deleted
        assert chunk is not None and chunk.first_seq == 7
        assert outbox.ack(6) is False
        assert outbox.ack(3) is False
        assert outbox.acked_seq == 6
        wait_until(lambda: outbox.depth() == 4)
        assert outbox.oldest_unacked_ts() == T0
    assert [seq for seq, *_ in stored(tmp_path)] == [7, 8, 9, 10]


def test_an_ack_beyond_what_was_assigned_is_an_error_and_changes_nothing(tmp_path: Path) -> None:
    with open_outbox(tmp_path) as outbox:
        outbox.put(reading())
        outbox.flush()
        with pytest.raises(AckAheadError, match=r"ack 5 is beyond .* assigned \(1\)") as ahead:
            outbox.ack(5)
        assert (ahead.value.kind, outbox.acked_seq, outbox.depth()) == ("ack_ahead", 0, 1)


def test_an_ack_for_another_stream_is_ignored(tmp_path: Path) -> None:
    with open_outbox(tmp_path) as outbox:
        outbox.put(reading())
        outbox.flush()
        assert outbox.ack(1, stream="0123456789abcdef") is False
        assert outbox.ack(1, stream=outbox.stream) is True


def test_the_ack_survives_a_restart(tmp_path: Path) -> None:
    with open_outbox(tmp_path) as outbox:
        for _ in range(5):
            outbox.put(reading())
        outbox.flush()
        outbox.ack(3)
    with open_outbox(tmp_path) as outbox:
        assert (outbox.acked_seq, outbox.depth(), outbox.committed_seq) == (3, 2, 5)
        chunk = outbox.read_batch(0)
        assert chunk is not None and (chunk.first_seq, chunk.last_seq) == (4, 5)


# -- waking the uplink ------------------------------------------------------------------------------


def test_listeners_hear_every_commit_until_removed(tmp_path: Path) -> None:
    heard: list[int] = []
    with open_outbox(tmp_path) as outbox:
        remove = outbox.add_listener(heard.append)
        outbox.put(reading())
        outbox.flush()
        remove()
        outbox.put(reading())
        outbox.flush()
    assert heard == [1]


def test_a_failing_listener_does_not_stop_commits(tmp_path: Path) -> None:
    def broken(seq: int) -> None:
        raise RuntimeError("uplink bug")

    with open_outbox(tmp_path) as outbox:
        outbox.add_listener(broken)
        outbox.put(reading())
        outbox.flush()
        outbox.put(reading())
        outbox.flush()
        assert outbox.committed_seq == 2


def test_asyncio_waits_for_a_commit_and_flushes(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int]:
        with open_outbox(tmp_path, commit_interval_ms=20) as outbox:
            waiter = asyncio.create_task(outbox.wait_committed(0))
            await asyncio.sleep(0.01)
            outbox.put(reading())
            seq = await asyncio.wait_for(waiter, 5)
            outbox.put(reading())
            await outbox.flush_async(5)
            return seq, outbox.committed_seq

    assert asyncio.run(scenario()) == (1, 2)


def test_status_reports_depth_age_and_sequence_numbers(tmp_path: Path) -> None:
    with open_outbox(tmp_path) as outbox:
        outbox.put(reading(ts=T0 - 5000))
        outbox.put(alert())
        outbox.flush()
        status = outbox.status()
    assert (status.depth, status.committed_seq, status.acked_seq, status.pending) == (2, 2, 0, 0)
    assert status.oldest_unacked_ts == T0 - 5000 and status.bytes_used > 0 and status.last_error is None


def test_unsequenced_is_zero() -> None:
    assert UNSEQUENCED == 0


# -- a failing disk -------------------------------------------------------------------------------


def test_a_failed_commit_keeps_its_items_and_retries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_insert = OutboxDb.insert
    failures = iter([sqlite3.OperationalError("disk I/O error")])

    def flaky_insert(self: OutboxDb, rows: object) -> None:
        for failure in failures:
            raise failure
        real_insert(self, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(OutboxDb, "insert", flaky_insert)
    with open_outbox(tmp_path) as outbox:
        for value in range(5):
            outbox.put(reading(float(value)))
        outbox.flush(timeout=10)
        assert "disk I/O error" in str(outbox.status().last_error)
    assert [(seq, item.value) for seq, _, _, item in stored(tmp_path)] == [  # type: ignore[attr-defined]
        (n + 1, float(n)) for n in range(5)
    ]


def test_close_says_how_many_items_a_dead_disk_kept_from_being_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def dead(self: OutboxDb, rows: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    outbox = open_outbox(tmp_path, commit_interval_ms=10_000)
    monkeypatch.setattr(OutboxDb, "insert", dead)
    for _ in range(3):
        outbox.put(reading())
    with pytest.raises(
        OutboxError, match=r"3 items could not be committed: OperationalError: disk I/O error"
    ):
        outbox.close()


def test_the_gateway_id_must_be_a_contract_id(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="gateway id 'gw 01' is not a contract id"):
        Outbox(config(tmp_path), gateway="gw 01", clock=FakeClock())
