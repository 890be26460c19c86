"""Reader timestamps placed on the gateway's clock, whatever the reader's clock does."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from coldgate.gateway.readers.reader_clock import ReaderClockMap

OFF = 1_800_000_000_000  # the reader's clock is epoch ms; ours is monotonic ms since boot


def test_spacing_follows_the_reader_and_placement_our_arrival() -> None:
    clock = ReaderClockMap()
    assert clock.place(OFF + 1000, 5_000) == 5_000
    # Two reads 300 ms apart in one report arriving together keep their spacing.
    assert clock.place(OFF + 1300, 5_350) == 5_300
    assert clock.place(OFF + 1600, 5_610) == 5_600


def test_a_lone_outlier_is_placed_at_its_arrival_and_ignored() -> None:
    clock = ReaderClockMap()
    clock.place(OFF, 1_000)
    assert clock.place(OFF + 365 * 86_400_000, 1_100) == 1_100  # a year ahead, once
    assert clock.place(OFF + 200, 1_200) == 1_200  # back to normal: the offset did not move
    assert clock.place(OFF + 400, 1_400) == 1_400 and clock.steps == 0


def test_a_confirmed_step_back_is_followed() -> None:
    clock = ReaderClockMap()
    clock.place(OFF, 1_000)
    hour = 3_600_000
    clock.place(OFF - hour + 1000, 2_000)  # stepped back: pending
    assert clock.place(OFF - hour + 1500, 2_500) == 2_500  # confirmed
    assert clock.place(OFF - hour + 1800, 2_810) == 2_800 and clock.steps == 1


def test_a_flushed_backlog_keeps_its_order_within_the_limit() -> None:
    clock = ReaderClockMap(max_backlog_ms=60_000)
    clock.place(OFF + 100_000, 200_000)
    assert clock.place(OFF + 70_000, 200_010) == 170_000  # 30 s old, from the reader's buffer
    assert clock.place(OFF, 200_020) == 200_020  # older than any buffer: a step or an outlier


def test_unstamped_reads_are_placed_at_arrival() -> None:
    assert ReaderClockMap().place(None, 42) == 42


@given(st.lists(st.tuples(st.integers(-(2**40), 2**40), st.integers(0, 10_000)), max_size=50))
def test_never_after_arrival_nor_beyond_the_backlog(reads: list[tuple[int, int]]) -> None:
    clock = ReaderClockMap()
    arrival = 1_000_000
    for reader_ms, gap in reads:
        arrival += gap
        placed = clock.place(reader_ms, arrival)
        assert arrival - clock.max_backlog_ms <= placed <= arrival
