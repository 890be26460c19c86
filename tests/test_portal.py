"""Dock-door portal: one movement per tagged case per pass, with direction; strays never move anything.

Three kinds of tests:

* seeded scenarios from ``simulator.rfid_scenarios`` (a pallet of 200 cases
  plus its SSCC tag through the door, staged goods, reconnect gaps);
* property tests over random read streams (hypothesis);
* case folders in ``tests/testcases/portal/<what_it_reproduces>/``, each with

  ``input.json``
      ``about`` (one sentence), optional ``config`` (``PortalConfig`` fields
      overriding door ``D1``, reader ``r1``, outside antennas ``[1]``, inside
      ``[2]``), ``reads`` as ``[ts_ms, antenna, epc, rssi_or_null, count]`` fed
      in the order given (so a case can deliver late reads), optional
      ``repeat`` (``{epc, antenna, rssi, from_ms, to_ms, every_ms}``: a steady
      read every ``every_ms`` in ``[from_ms, to_ms)``; when present, all reads
      are fed in time order), optional ``tick_every_ms`` (default 100).  The
      portal is driven by ``feed_all``: a tick every ``tick_every_ms`` of read
      time, then a final tick T after the last read.
  ``expected.json``
      ``decisions``: every movement in order, with ``epc``, ``direction``,
      ``first_seen_ms``, ``last_seen_ms``, ``read_count`` and optionally
      ``decided_ms``, ``antennas``, ``peak_rssi``; optional ``strays``
      (``{epc, reason}`` in order) and ``stats`` (a subset of the counters).

  A bug report becomes a new folder, not a new test function.
"""

from __future__ import annotations

import collections
import itertools
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldgate.gateway.readers.epc import decode_epc
from coldgate.gateway.rules.dock_portal import DockPortal, PassDecision, PortalConfig, TagRead, feed_all
from coldgate.simulator import rfid_scenarios as sc
from tests.rig.cases import case_dirs, each_case, read_expected, read_input

CASES = case_dirs("portal")
T = 2000


def config(**overrides: Any) -> PortalConfig:
    base: dict[str, Any] = {
        "door": "D1",
        "reader": "r1",
        "outside_antennas": frozenset({1}),
        "inside_antennas": frozenset({2}),
    }
    base.update(overrides)
    return PortalConfig(**base)


def run(reads: list[sc.Read], **overrides: Any) -> tuple[list[PassDecision], DockPortal]:
    portal = DockPortal(config(**overrides))
    return feed_all(portal, reads), portal


# -- scenarios ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["in", "out"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pallet_pass_gives_one_movement_per_case(direction: str, seed: int) -> None:
    reads = sc.pallet_pass(direction, seed=seed)  # type: ignore[arg-type]
    decisions, portal = run(reads)
    assert len(decisions) == 201
    assert {d.direction for d in decisions} == {direction}
    assert len({d.epc for d in decisions}) == 201
    assert {d.epc for d in decisions} == {r[2] for r in reads}
    assert all(d.door == "D1" and d.reader == "r1" and d.antennas == (1, 2) for d in decisions)
    assert portal.stats.strays == 0 and portal.tracked() == 0


def test_pallet_epcs_decode_as_200_cases_and_one_pallet() -> None:
    decoded = [decode_epc(e) for e in {r[2] for r in sc.pallet_pass("in")}]
    schemes = collections.Counter(d.scheme for d in decoded)
    assert schemes == {"sgtin-96": 200, "sscc-96": 1}
    assert {d.gtin for d in decoded if d.gtin} == {"80614141123458"}
    assert sorted(int(d.serial or 0) for d in decoded if d.serial) == list(range(1, 201))


def test_strays_mixed_in_are_counted_never_emitted() -> None:
    staged = sc.strays(10, antenna=2, duration_ms=40_000, seed=3) + sc.strays(
        5, antenna=1, duration_ms=40_000, seed=4, first_serial=950_000
    )
    reads = sc.merge(sc.pallet_pass("in", start_ms=15_000, seed=5), staged)
    decisions, portal = run(reads)
    staged_epcs = {r[2] for r in staged}
    assert len(staged_epcs) == 15
    assert len(decisions) == 201 and {d.direction for d in decisions} == {"in"}
    assert not staged_epcs & {d.epc for d in decisions}
    assert portal.stats.strays >= 15
    assert staged_epcs == {s.epc for s in portal.strays()} & staged_epcs
    assert {s.reason for s in portal.strays()} <= {"one zone", "dwell"}


def test_reader_reconnect_gap_shorter_than_t_gives_no_doubles() -> None:
    reads = sc.pallet_pass("in", seed=6)
    middle = (reads[0][0] + reads[-1][0]) // 2
    gapped = [r for r in reads if not middle <= r[0] < middle + 1500]
    assert len(gapped) < len(reads)
    decisions, portal = run(gapped)
    counts = collections.Counter(d.epc for d in decisions)
    assert max(counts.values()) == 1 and {d.direction for d in decisions} == {"in"}
    # Cases seen on one side only before the gap wait one_side_wait_ms for the other side instead of
    # becoming two strays; cases already seen on both sides whose own silence exceeds T are decided, and
    # their few reads after the gap are a one-sided tail: a stray, never a second movement.
    assert len(decisions) == 201
    assert all(s.reason == "one zone" for s in portal.strays())


def test_same_pallet_coming_back_after_departure_is_a_new_pass() -> None:
    there = sc.pallet_pass("in", seed=7)
    back = sc.pallet_pass("out", seed=8, start_ms=there[-1][0] + 10_000)
    decisions, _ = run(there + back)
    assert len(decisions) == 402
    by_epc: dict[str, list[str]] = collections.defaultdict(list)
    for d in decisions:
        by_epc[d.epc].append(d.direction)
    assert len(by_epc) == 201 and all(v == ["in", "out"] for v in by_epc.values())


def test_tag_cap_bounds_memory_and_counts_what_it_drops() -> None:
    portal = DockPortal(config(max_tags=50))
    peak = 0
    for ts, antenna, epc, rssi, count in sc.pallet_pass("in", seed=9):
        portal.read(TagRead(epc, antenna, rssi, ts, count))
        peak = max(peak, portal.tracked())
        portal.tick(ts)
    portal.tick(10**9)
    stats = portal.stats
    assert peak <= 50 and portal.tracked() == 0
    assert stats.evicted + stats.refused_reads > 0
    assert stats.decisions < 201


def test_scenarios_are_deterministic_and_plausible() -> None:
    a, b = sc.pallet_pass("out", seed=11), sc.pallet_pass("out", seed=11)
    assert a == b and a != sc.pallet_pass("out", seed=12)
    assert a == sorted(a, key=lambda r: (r[0], r[1], r[2]))
    assert all(-75 <= r[3] <= -45 and r[1] in (1, 2) and r[4] == 1 for r in a)
    # Outbound: each tag's first read on the inside antenna comes before its first outside read, mostly.
    first: dict[tuple[str, int], int] = {}
    for ts, antenna, epc, _, _ in a:
        first.setdefault((epc, antenna), ts)
    epcs = {r[2] for r in a}
    inside_first = sum(first[(e, 2)] < first.get((e, 1), 10**9) for e in epcs)
    assert inside_first > 0.9 * len(epcs)
    s = sc.strays(3, antenna=2, duration_ms=10_000, seed=1)
    assert {r[1] for r in s} == {2} and all(r[0] < 10_000 for r in s) and len({r[2] for r in s}) == 3


def test_config_is_checked_at_load_time() -> None:
    with pytest.raises(ValueError, match="inside_antennas"):
        config(inside_antennas=frozenset({1, 2}))
    with pytest.raises(ValueError, match="outside_antennas"):
        config(outside_antennas=frozenset())
    with pytest.raises(ValueError, match="presence_reads"):
        config(presence_reads=0)
    with pytest.raises(ValueError, match="stray_max_dwell_ms"):
        config(stray_max_dwell_ms=500)


def test_feed_all_takes_tag_reads_and_lower_case_epcs_are_one_tag() -> None:
    reads = [
        TagRead("abc1", 1, -50.0, 0),
        TagRead("ABC1", 1, -52.0, 200),
        TagRead("abc1", 2, -51.0, 600),
        TagRead("Abc1", 2, -55.0, 800),
    ]
    (decision,) = feed_all(DockPortal(config()), reads)
    assert decision.epc == "ABC1" and decision.direction == "in" and decision.read_count == 4


# -- properties ---------------------------------------------------------------------------------------------

EPCS = ("A", "B", "C")

events = st.lists(
    st.one_of(
        st.tuples(
            st.just("read"),
            st.integers(min_value=-300, max_value=2600),  # time step; negative: a report stamped earlier
            st.sampled_from(EPCS),
            st.sampled_from((1, 2, 3)),
            st.one_of(st.none(), st.floats(min_value=-80, max_value=-40)),
            st.integers(min_value=1, max_value=3),
        ),
        st.tuples(st.just("tick"), st.integers(min_value=0, max_value=3000)),
    ),
    max_size=80,
)


def _drive(
    script: list[tuple[Any, ...]], cfg: PortalConfig
) -> tuple[list[TagRead], list[PassDecision], DockPortal]:
    portal = DockPortal(cfg)
    now, clock = 1_000_000, 1_000_000
    fed: list[TagRead] = []
    decisions: list[PassDecision] = []
    for event in script:
        if event[0] == "read":
            _, step, epc, antenna, rssi, count = event
            now = max(0, now + step)
            clock = max(clock, now)
            read = TagRead(epc, antenna, rssi, now, count)
            fed.append(read)
            portal.read(read)
        else:
            clock += event[1]
            decisions.extend(portal.tick(clock))
    decisions.extend(portal.tick(max(clock, now) + max(cfg.depart_after_ms, cfg.one_side_wait_ms)))
    return fed, decisions, portal


def _ever_present(reads: list[TagRead], cfg: PortalConfig) -> bool:
    """Whether some reads of one tag add up to k within one presence window (ignoring zone and pass)."""
    times = sorted(
        (r.ts_ms, r.count)
        for r in reads
        if r.antenna in cfg.outside_antennas | cfg.inside_antennas
        and (cfg.min_rssi is None or r.rssi is None or r.rssi >= cfg.min_rssi)
    )
    for i, (t0, _) in enumerate(times):
        if sum(c for t, c in times[i:] if t < t0 + cfg.presence_window_ms) >= cfg.presence_reads:
            return True
    return False


@settings(max_examples=150, deadline=None)
@given(script=events, k=st.integers(min_value=1, max_value=4), min_rssi=st.sampled_from((None, -65.0)))
def test_portal_properties(script: list[tuple[Any, ...]], k: int, min_rssi: float | None) -> None:
    cfg = config(presence_reads=k, min_rssi=min_rssi, stray_max_dwell_ms=8000)
    fed, decisions, portal = _drive(script, cfg)
    # Decided only once the tag has been quiet for T.
    assert all(d.decided_ms - d.last_seen_ms >= cfg.depart_after_ms for d in decisions)
    assert all(d.first_seen_ms <= d.last_seen_ms and d.read_count >= 1 for d in decisions)
    # At most one decision per tag per pass: a tag's passes are separated by more than T of silence.
    by_epc: dict[str, list[PassDecision]] = collections.defaultdict(list)
    for d in decisions:
        by_epc[d.epc].append(d)
    for passes in by_epc.values():
        passes.sort(key=lambda d: d.first_seen_ms)
        for earlier, later in itertools.pairwise(passes):
            assert later.first_seen_ms > earlier.last_seen_ms + cfg.depart_after_ms
    # A tag never read k times within the window never moves anything.
    for epc in EPCS:
        if not _ever_present([r for r in fed if r.epc == epc], cfg):
            assert epc not in by_epc
    # Everything is forgotten once decided; the counters agree with what came out.
    assert portal.tracked() == 0
    assert portal.stats.decisions == len(decisions)
    assert portal.stats.reads == len(fed)
    assert all(set(d.antennas) <= {1, 2} for d in decisions)


# -- case folders -------------------------------------------------------------------------------------------


def _case_reads(given_: dict[str, Any]) -> list[sc.Read]:
    reads = [tuple(r) for r in given_.get("reads", [])]
    for rep in given_.get("repeat", []):
        reads.extend(
            (t, rep["antenna"], rep["epc"], rep["rssi"], 1)
            for t in range(rep["from_ms"], rep["to_ms"], rep["every_ms"])
        )
    if given_.get("repeat"):
        reads.sort(key=lambda r: r[0])
    return reads  # type: ignore[return-value]


@each_case("portal")
def test_case(case: Path) -> None:
    given_ = read_input(case)
    expected = read_expected(case)
    overrides = dict(given_.get("config", {}))
    for key in ("outside_antennas", "inside_antennas"):
        if key in overrides:
            overrides[key] = frozenset(overrides[key])
    portal = DockPortal(config(**overrides))
    decisions = feed_all(portal, _case_reads(given_), tick_every_ms=given_.get("tick_every_ms", 100))

    got = [asdict(d) for d in decisions]
    want = expected.get("decisions", [])
    assert len(got) == len(want), got
    for g, w in zip(got, want, strict=True):
        g["antennas"] = list(g["antennas"])
        assert {k: g[k] for k in w} == w, g
    if "strays" in expected:
        assert [{"epc": s.epc, "reason": s.reason} for s in portal.strays()] == expected["strays"]
    stats = asdict(portal.stats)
    assert {k: stats[k] for k in expected.get("stats", {})} == expected.get("stats", {})
    assert portal.tracked() == 0


def test_there_are_portal_cases() -> None:
    assert len(CASES) >= 10
    for case in CASES:
        assert read_input(case).get("about"), case
