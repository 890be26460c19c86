"""The restart gap's decision (start, end, threshold, detail) and the local state it is read from.

The pure part (``gateway.restart_gap``) is driven with stamps; the state it
reads is the real outbox file (its last sign of life and clean-close flag) and
the real heartbeat file.  The whole gateway process killed and restarted is in
``test_gateway_restart_gap_process.py``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import pytest

from coldgate.contract.codec import validate
from coldgate.contract.items import Gap, GapCause, SubjectType
from coldgate.gateway.clock import Stamp
from coldgate.gateway.config_load import gateway_config_from_document
from coldgate.gateway.local_status import HEARTBEAT_FILE, heartbeat_stamp, write_heartbeat
from coldgate.gateway.restart_gap import CONTINUOUS_MIN_GAP_MS, PreviousRun, latest, min_gap_ms, restart_gap
from coldgate.gateway.status import build_status, will_status
from tests.rig.clocks import FakeClock
from tests.rig.items import MONO0, T0, reading
from tests.rig.outbox import open_outbox

BOOT_A = "a" * 32
BOOT_B = "b" * 32
POLL_MS = 60_000


def at(wall_ms: int, mono_ms: int, boot: str = BOOT_A, synced: bool = True) -> Stamp:
    return Stamp(wall_ms=wall_ms, mono_ms=mono_ms, boot=boot, synced=synced)


def gap_after(previous: PreviousRun | None, resumed: Stamp, threshold: int = POLL_MS) -> Gap | None:
    return restart_gap(previous, resumed, gateway="gw-7", min_gap_ms=threshold)


# -- the decision ------------------------------------------------------------------------------------


def test_a_crash_on_the_same_boot_is_one_gateway_gap_from_the_last_sign_of_life_to_the_restart() -> None:
    previous = PreviousRun(alive=at(T0, MONO0), clean=False)
    resumed = at(T0 + 95_000, MONO0 + 95_000)
    gap = gap_after(previous, resumed)
    assert gap is not None
    validate(msgspec.structs.replace(gap, seq=1))  # a contract-valid item once numbered
    assert (gap.subject_type, gap.subject, gap.cause) == (
        SubjectType.GATEWAY,
        "gw-7",
        GapCause.GATEWAY_OFFLINE,
    )
    assert (gap.start, gap.end) == (T0, T0 + 95_000)
    assert (gap.ts, gap.boot, gap.mono, gap.synced) == (resumed.wall_ms, BOOT_A, resumed.mono_ms, True)
    assert gap.detail.startswith("gateway process restarted (same boot) after ending without a clean stop")
    assert "(95.0 s)" in gap.detail


def test_a_clean_stop_followed_by_a_start_is_recorded_as_a_clean_stop() -> None:
    gap = gap_after(PreviousRun(alive=at(T0, MONO0), clean=True), at(T0 + 300_000, MONO0 + 300_000))
    assert gap is not None and gap.cause is GapCause.GATEWAY_OFFLINE
    assert gap.detail.startswith("gateway stopped cleanly (service stop or restart) and started again")


def test_a_changed_boot_id_is_a_reboot_or_power_loss_named_in_the_detail() -> None:
    gap = gap_after(PreviousRun(alive=at(T0, MONO0), clean=False), at(T0 + 40_000 + POLL_MS, 9_000, BOOT_B))
    assert gap is not None and (gap.start, gap.end) == (T0, T0 + 40_000 + POLL_MS)
    assert gap.detail.startswith(
        f"gateway host rebooted or lost power (boot id changed from {BOOT_A} to {BOOT_B})"
    )
    clean = gap_after(PreviousRun(alive=at(T0, MONO0), clean=True), at(T0 + 2 * POLL_MS, 9_000, BOOT_B))
    assert clean is not None and clean.detail.startswith("gateway stopped cleanly, then the host rebooted")


@pytest.mark.parametrize(
    ("down_ms", "recorded"),
    [(1_000, False), (POLL_MS, False), (POLL_MS + 1, True), (10 * POLL_MS, True)],
)
def test_no_gap_unless_more_than_one_poll_interval_passed(down_ms: int, recorded: bool) -> None:
    """A restart before the next poll slot lost no reading: nothing to record."""
    previous = PreviousRun(alive=at(T0, MONO0), clean=False)
    assert (gap_after(previous, at(T0 + down_ms, MONO0 + down_ms)) is not None) is recorded
    rebooted = at(T0 + down_ms, 5_000, BOOT_B)
    assert (gap_after(previous, rebooted) is not None) is recorded


def test_on_the_same_boot_the_monotonic_clock_decides_not_a_stepped_wall_clock() -> None:
    previous = PreviousRun(alive=at(T0, MONO0), clean=False)
    # NTP stepped the wall clock an hour forward during a 2 s restart: no poll slot was missed.
    assert gap_after(previous, at(T0 + 3_600_000, MONO0 + 2_000)) is None
    # ... and back an hour during a long outage: still a gap, its end never before its start.
    gap = gap_after(previous, at(T0 - 3_600_000, MONO0 + 5 * POLL_MS))
    assert gap is not None and gap.start == gap.end == T0


def test_a_reboot_with_an_unsynchronised_clock_is_recorded_whatever_its_wall_time_says() -> None:
    """A Pi without RTC may boot with an older time: the reboot happened all the same."""
    gap = gap_after(
        PreviousRun(alive=at(T0, MONO0), clean=False), at(T0 - 5_000, 4_000, BOOT_B, synced=False)
    )
    assert gap is not None and gap.start == gap.end == T0 and not gap.synced
    assert "clock was not synchronised at the restart" in gap.detail


def test_a_first_start_records_nothing() -> None:
    assert gap_after(None, at(T0, MONO0)) is None


def test_the_latest_sign_of_life_is_taken_by_the_monotonic_clock_within_a_boot() -> None:
    outbox_mark, heartbeat = at(T0, MONO0), at(T0 - 1, MONO0 + 30_000)  # wall clock stepped back between
    assert latest(outbox_mark, heartbeat) == heartbeat
    assert latest(None, outbox_mark, None) == outbox_mark and latest(None) is None
    older_boot = at(T0 + 5_000, 1, BOOT_B)
    assert latest(outbox_mark, older_boot) == older_boot  # across boots: by wall time


def test_the_threshold_is_the_shortest_poll_interval_and_one_second_with_readers_or_scanners() -> None:
    def config(**sections: object):  # type: ignore[no-untyped-def]
        document = {"gateway": {"id": "gw-7", "site": "s1", "data_dir": "/tmp/x"}, **sections}
        return gateway_config_from_document(document, "gw.toml")

    lines = [{"id": "bus", "transport": "tcp", "host": "127.0.0.1", "port": 502}]
    sensors = [
        {
            "source": "modbus",
            "id": f"t{unit}",
            "line": "bus",
            "unit": unit,
            "profile": "xy-md02",
            "interval_s": s,
        }
        for unit, s in ((1, 30), (2, 90))
    ]
    assert min_gap_ms(config(modbus_lines=lines, sensors=sensors)) == 30_000
    assert min_gap_ms(config()) == CONTINUOUS_MIN_GAP_MS
    scanner = [{"id": "sc1", "port": "/dev/ttyUSB0"}]
    assert min_gap_ms(config(modbus_lines=lines, sensors=sensors, scanners=scanner)) == CONTINUOUS_MIN_GAP_MS


# -- the local state it is read from ----------------------------------------------------------------


def test_the_outbox_keeps_the_newest_committed_stamp_and_whether_it_was_closed_cleanly(
    tmp_path: Path,
) -> None:
    with open_outbox(tmp_path) as outbox:
        assert outbox.previous_alive is None  # a new outbox: a first start
        outbox.put(reading(ts=T0, mono=MONO0))
        outbox.put(reading(ts=T0 + 1_000, mono=MONO0 + 1_000, synced=False))
        outbox.flush(10)
        outbox.ack(outbox.committed_seq)  # acknowledged and deleted: the mark stays
    with open_outbox(tmp_path) as outbox:
        assert outbox.previous_alive == at(T0 + 1_000, MONO0 + 1_000, reading().boot, synced=False)
        assert outbox.previous_clean
        assert outbox.depth() == 0
        # A stale item from earlier in the same boot does not move the mark back.
        outbox.put(reading(ts=T0 + 5_000, mono=MONO0 + 5_000))
        outbox.flush(10)
        outbox.put(reading(ts=T0 + 2_000, mono=MONO0 + 2_000))
        outbox.flush(10)
    set_meta(tmp_path, "clean", 0)  # what a kill -9 or a power cut leaves: the file still marked open
    with open_outbox(tmp_path) as outbox:
        assert outbox.previous_alive is not None and outbox.previous_alive.wall_ms == T0 + 5_000
        assert not outbox.previous_clean


def test_an_outbox_from_before_the_mark_existed_gains_it(tmp_path: Path) -> None:
    with open_outbox(tmp_path) as outbox:
        outbox.put(reading())
        outbox.flush(10)
    set_meta(tmp_path, "alive_%", None)
    with open_outbox(tmp_path) as outbox:
        assert outbox.previous_alive is None
        outbox.put(reading(ts=T0 + 7, mono=MONO0 + 7))
        outbox.flush(10)
    with open_outbox(tmp_path) as outbox:
        assert outbox.previous_alive is not None and outbox.previous_alive.wall_ms == T0 + 7


def test_the_heartbeat_on_disk_is_a_sign_of_life_and_a_last_will_or_garbage_is_none(tmp_path: Path) -> None:
    clock = FakeClock()
    assert heartbeat_stamp(tmp_path) is None
    write_heartbeat(tmp_path, build_status(site="s1", gateway="gw-7", clock=clock))
    assert heartbeat_stamp(tmp_path) == clock.stamp()
    write_heartbeat(tmp_path, will_status("s1", "gw-7", clock))
    assert heartbeat_stamp(tmp_path) is None
    (tmp_path / HEARTBEAT_FILE).write_bytes(b'{"v": 1, "torn')
    assert heartbeat_stamp(tmp_path) is None


def set_meta(path: Path, key: str, value: int | None) -> None:
    """Change the closed outbox file's counters with a connection of the test's own (None: delete)."""
    conn = sqlite3.connect(path / "outbox.sqlite3")
    try:
        with conn:
            if value is None:
                conn.execute("DELETE FROM meta WHERE key LIKE ?", (key,))
            else:
                conn.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))
    finally:
        conn.close()
