"""What a misbehaving logger puts on the wire: silence or corrupted frames.

pymodbus's simulator API can change register values and return exception codes,
but it has no way to *not* answer or to answer with a broken frame.  The one
documented hook that sees the exact bytes about to be sent is the server's
``trace_packet(sending, data) -> data`` callback; whatever it returns is what
the transport writes.  :class:`WireFaults` is that callback: it returns ``b""``
for a unit in dropout (nothing is written, the client times out) and a
corrupted copy for a unit producing garbage.

Corruption is chosen so a client can never mistake it for a valid reading:

- RTU: bits flipped in one byte and the CRC left as it was.  CRC-16 detects every
  error confined to 16 bits, so the frame always fails its check.
- TCP: the MBAP header is malformed (non-zero protocol id, or a length field that
  promises more bytes than follow).  TCP's own checksum means a real TCP device
  never garbles a PDU body; broken headers come from buggy serial-to-Ethernet
  gateways, so that is what we imitate.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from coldgate.simulator.curves import Behaviour


def unit_of(frame: bytes, rtu: bool) -> int | None:
    """The unit id a Modbus frame is addressed from/to (None if too short to tell)."""
    index = 0 if rtu else 6
    return frame[index] if len(frame) > index else None


def corrupt_rtu(frame: bytes, rng: random.Random) -> bytes:
    """An RTU frame that can never pass its CRC check."""
    data = bytearray(frame)
    position = rng.randrange(len(data) - 2) if len(data) > 2 else 0
    data[position] ^= rng.randrange(1, 256)  # at least one bit flips
    return bytes(data)


def corrupt_socket(frame: bytes, rng: random.Random) -> bytes:
    """A Modbus TCP frame with an MBAP header no client accepts."""
    data = bytearray(frame)
    if rng.random() < 0.5:
        data[2:4] = rng.randrange(1, 0x10000).to_bytes(2, "big")  # protocol id must be 0
    else:
        claimed = int.from_bytes(data[4:6], "big") + rng.randrange(1, 200)
        data[4:6] = min(claimed, 0xFFFF).to_bytes(2, "big")  # more bytes promised than sent
    return bytes(data)


class WireFaults:
    """A pymodbus ``trace_packet`` hook that silences or corrupts a misbehaving unit's answers.

    ``verdict(unit)`` says how the unit behaves right now (``None`` for a unit the
    farm does not know, which is left to pymodbus).  The register action decides
    the behaviour at the moment the reading is taken and hands it over through
    :meth:`remember` so the frame and the value belong to the same instant;
    frames the action never saw (exception responses) ask ``verdict`` instead.
    """

    def __init__(self, *, rtu: bool, verdict: Callable[[int], Behaviour | None], seed: int = 0) -> None:
        self.rtu = rtu
        self._verdict = verdict
        self._pending: dict[int, Behaviour] = {}
        self._rng = random.Random(seed)
        self.silenced = 0
        self.corrupted = 0

    def remember(self, unit: int, behaviour: Behaviour) -> None:
        self._pending[unit] = behaviour

    def __call__(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            return data
        unit = unit_of(data, self.rtu)
        if unit is None:
            return data
        behaviour = self._pending.pop(unit, None) or self._verdict(unit)
        if behaviour is Behaviour.DROPOUT:
            self.silenced += 1
            return b""
        if behaviour is Behaviour.GARBAGE:
            self.corrupted += 1
            return corrupt_rtu(data, self._rng) if self.rtu else corrupt_socket(data, self._rng)
        return data
