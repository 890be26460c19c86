"""Where the uplink stands in the outbox: two read positions, what is in flight, when to re-send.

Pure bookkeeping with the time passed in (no MQTT, no SQL), so the rules in
``outbox.py``'s docstring that keep "nothing lost, nothing doubled, nothing
re-sent in a loop" are tested on their own.  Nothing here is durable: after a
restart the uplink starts from the outbox's ``acked_seq``, everything
unacknowledged goes once more, and the cloud de-duplicates.

The uplink's loop, on every wake-up (commit, ack, timer, reconnect)::

    d = Delivery(outbox.acked_seq)                      # at start
    d.reconnected()                                     # on every (re)connect
    outbox.ack(ack.seq); d.acked(ack.seq)               # on an Ack message
    d.expired(now, ack_timeout_s)                       # on a timer: rewinds the stream
    # sequence stream first, as far as the in-flight window and the drain rate allow:
    chunk = outbox.read_batch(d.stream_after()); publish; d.sent(chunk.first_seq, chunk.last_seq, now)
    # then priority items beyond it, whatever the backlog:
    chunk = outbox.read_batch(d.express_after(), lane=PRIORITY); publish; d.sent(..., express=True)

In steady state the stream sends everything at once and the express read
finds nothing beyond it; express only matters while a backlog is held back.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sent:
    first_seq: int
    last_seq: int
    since: float  # when it was published (the caller's clock)


class Delivery:
    """The sequence stream's and the express stream's positions, and the ranges in flight."""

    def __init__(self, acked_seq: int = 0) -> None:
        self.acked_seq = acked_seq
        self._stream_upto = acked_seq
        self._express_upto = acked_seq
        self._stream: deque[Sent] = deque()
        self._express: deque[Sent] = deque()

    def stream_after(self) -> int:
        """``after_seq`` for the next sequence-stream read."""
        return max(self._stream_upto, self.acked_seq)

    def express_after(self) -> int:
        """``after_seq`` for the next express read: past both what went express and what the stream sent."""
        return max(self._express_upto, self.stream_after())

    def sent(self, first_seq: int, last_seq: int, now: float, *, express: bool = False) -> None:
        """Record a published batch."""
        if express:
            self._express_upto = max(self._express_upto, last_seq)
            self._express.append(Sent(first_seq, last_seq, now))
            return
        if first_seq != self.stream_after() + 1:
            raise ValueError(f"stream batch starts at {first_seq}, expected {self.stream_after() + 1}")
        self._stream_upto = last_seq
        self._stream.append(Sent(first_seq, last_seq, now))

    def acked(self, seq: int) -> bool:
        """A cumulative ack; True if it moved forward (stale and repeated ones are ignored)."""
        if seq <= self.acked_seq:
            return False
        self.acked_seq = seq
        for ranges in (self._stream, self._express):
            while ranges and ranges[0].last_seq <= seq:
                ranges.popleft()
        return True

    def in_flight(self) -> int:
        """Sequence-stream batches awaiting their ack (for ``inflight_max_batches``)."""
        return len(self._stream)

    def express_in_flight(self) -> list[Sent]:
        """Express batches the cumulative ack does not cover yet (never timed out, see the outbox)."""
        return list(self._express)

    def expired(self, now: float, timeout_s: float) -> bool:
        """Rewind the stream to the ack when its oldest batch has waited ``timeout_s``; True if so."""
        if self._stream and now - self._stream[0].since >= timeout_s:
            self._rewind()
            return True
        return False

    def reconnected(self) -> None:
        """A new connection: anything unacknowledged may be lost in the old one, so send it again once."""
        self._rewind()
        self._express_upto = self.acked_seq
        self._express.clear()

    def resend_from(self, seq: int) -> None:
        """The cloud's ``resend_from`` command: the stream goes back to ``seq`` (not below the ack)."""
        self._stream_upto = max(self.acked_seq, min(self._stream_upto, seq - 1))
        while self._stream and self._stream[-1].first_seq > self._stream_upto:
            self._stream.pop()

    def _rewind(self) -> None:
        self._stream_upto = self.acked_seq
        self._stream.clear()
