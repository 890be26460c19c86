"""Seeded tag-read streams for a dock-door portal: a pallet passing through, goods staged by the door.

The streams feed the portal rules' tests and, later, the LLRP reader
emulator, so they are plain tuples ``(ts_ms, antenna, epc_hex, rssi, count)``
in time order that the emulator can pack into RO_ACCESS_REPORTs as they are.

The physics is deliberately simple but has the features the portal logic has
to cope with: a reader inventories one antenna at a time (``dwell_ms`` each,
alternating), so a tag is read a few times per second per antenna at most;
RSSI rises as the pallet approaches an antenna, peaks when it is level with it
and falls (−45 dBm at the antenna, −75 dBm at the edge of the read range),
with Gaussian noise; weak tags are missed more often.  Cases sit at different
depths in the pallet, so their peaks are spread over a few hundred
milliseconds.  The same seed always gives the same stream.
"""

from __future__ import annotations

import random
from typing import Literal

from epcpy.epc_schemes import SGTIN, SSCC
from epcpy.epc_schemes.sgtin import SGTINFilterValue
from epcpy.epc_schemes.sscc import SSCCFilterValue

#: One read as the emulator sends it: (ts_ms, antenna, epc_hex, rssi_dbm, tag_seen_count).
Read = tuple[int, int, str, float, int]

RSSI_PEAK_DBM = -45.0
RSSI_FLOOR_DBM = -75.0
#: dB lost per metre of distance along the travel axis from an antenna.
RSSI_SLOPE_DB_PER_M = 12.0
#: Distance of each antenna from the door line (outside at −x, inside at +x).
ANTENNA_OFFSET_M = 1.2


def sgtin96_hex(company_prefix: str, item_ref: str, serial: int) -> str:
    """An SGTIN-96 EPC (filter 2, full case) as the tag carries it, encoded by epcpy."""
    tag = SGTIN(f"urn:epc:id:sgtin:{company_prefix}.{item_ref}.{serial}")
    return tag.hex(
        binary_coding_scheme=SGTIN.BinaryCodingScheme.SGTIN_96, filter_value=SGTINFilterValue.FULL_CASE
    )


def sscc96_hex(company_prefix: str, serial_ref: str) -> str:
    """An SSCC-96 EPC (filter 6, unit load: the pallet label's tag), encoded by epcpy."""
    tag = SSCC(f"urn:epc:id:sscc:{company_prefix}.{serial_ref}")
    return tag.hex(
        binary_coding_scheme=SSCC.BinaryCodingScheme.SSCC_96, filter_value=SSCCFilterValue.UNIT_LOAD
    )


def case_epcs(
    cases: int, company_prefix: str = "0614141", item_ref: str = "812345", first_serial: int = 1
) -> list[str]:
    """``cases`` distinct SGTIN-96 EPCs of one product with consecutive serials."""
    return [sgtin96_hex(company_prefix, item_ref, first_serial + i) for i in range(cases)]


def _rssi(distance_m: float, rng: random.Random, noise_db: float) -> float | None:
    """RSSI at ``distance_m`` from an antenna, or None when the tag is out of range or missed."""
    clean = RSSI_PEAK_DBM - RSSI_SLOPE_DB_PER_M * distance_m
    if clean < RSSI_FLOOR_DBM:
        return None
    # Weak tags are missed more often: 97 % near the antenna, 60 % at the edge of the range.
    p_read = 0.6 + 0.37 * (clean - RSSI_FLOOR_DBM) / (RSSI_PEAK_DBM - RSSI_FLOOR_DBM)
    if rng.random() > p_read:
        return None
    value = clean + rng.gauss(0.0, noise_db)
    return round(min(RSSI_PEAK_DBM, max(RSSI_FLOOR_DBM, value)), 1)


def pallet_pass(
    direction: Literal["in", "out"],
    cases: int = 200,
    with_pallet_tag: bool = True,
    door_antennas: tuple[int, int] = (1, 2),
    start_ms: int = 0,
    speed_m_s: float = 1.2,
    seed: int = 0,
    company_prefix: str = "0614141",
    item_ref: str = "812345",
    first_serial: int = 1,
    pallet_serial_ref: str = "1234567890",
    dwell_ms: int = 200,
    noise_db: float = 1.5,
) -> list[Read]:
    """A pallet of ``cases`` tagged cases (plus its SSCC tag) driven through the door, in time order.

    ``door_antennas`` is ``(outside, inside)``.  ``"in"`` drives from outside
    to inside (receiving), ``"out"`` the reverse (dispatch).  The pallet starts
    and ends beyond read range, so every tag's reads begin and end within the
    stream; the stream lasts about ``2 × 3.7 m / speed_m_s``.
    """
    if direction not in ("in", "out"):
        raise ValueError(f"direction: 'in' or 'out', got {direction!r}")
    rng = random.Random(seed)
    epcs = case_epcs(cases, company_prefix, item_ref, first_serial)
    if with_pallet_tag:
        epcs.append(sscc96_hex(company_prefix, pallet_serial_ref))
    # Each tag's position within the pallet (±0.5 m along the travel axis) shifts when it passes an antenna.
    depth = {epc: rng.uniform(-0.5, 0.5) for epc in epcs}
    outside, inside = door_antennas
    antenna_x = {outside: -ANTENNA_OFFSET_M, inside: ANTENNA_OFFSET_M}
    reach = ANTENNA_OFFSET_M + (RSSI_PEAK_DBM - RSSI_FLOOR_DBM) / RSSI_SLOPE_DB_PER_M + 0.6
    sign = 1.0 if direction == "in" else -1.0
    duration_ms = int(2 * reach / speed_m_s * 1000)
    reads: list[Read] = []
    order = [outside, inside]
    for slot, slot_start in enumerate(range(0, duration_ms, dwell_ms)):
        antenna = order[slot % 2]
        for epc in epcs:
            ts = slot_start + rng.randrange(dwell_ms)
            x = sign * (-reach + speed_m_s * ts / 1000) + depth[epc]
            rssi = _rssi(abs(x - antenna_x[antenna]), rng, noise_db)
            if rssi is not None:
                reads.append((start_ms + ts, antenna, epc, rssi, 1))
    reads.sort(key=lambda r: (r[0], r[1], r[2]))
    return reads


def strays(
    n: int,
    antenna: int,
    duration_ms: int,
    start_ms: int = 0,
    seed: int = 0,
    company_prefix: str = "0614141",
    item_ref: str = "800001",
    first_serial: int = 900_000,
    mean_gap_ms: int = 700,
    rssi_dbm: float = -70.0,
) -> list[Read]:
    """``n`` cases staged near the door: steady low RSSI on one antenna, read intermittently, in time order.

    Gaps between reads are exponential around ``mean_gap_ms``, so some are
    long enough to end a pass and start another: the portal must treat every
    one of those passes as a stray, never as a movement.
    """
    rng = random.Random(seed)
    reads: list[Read] = []
    for epc in case_epcs(n, company_prefix, item_ref, first_serial):
        ts = rng.randrange(mean_gap_ms)
        while ts < duration_ms:
            rssi = round(max(RSSI_FLOOR_DBM, min(RSSI_PEAK_DBM, rssi_dbm + rng.gauss(0.0, 1.0))), 1)
            reads.append((start_ms + ts, antenna, epc, rssi, 1))
            ts += max(1, int(rng.expovariate(1.0 / mean_gap_ms)))
    reads.sort(key=lambda r: (r[0], r[1], r[2]))
    return reads


def merge(*streams: list[Read]) -> list[Read]:
    """Interleave several streams into one in time order (as one reader would report them)."""
    return sorted((r for s in streams for r in s), key=lambda r: (r[0], r[1], r[2]))
