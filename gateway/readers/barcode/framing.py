"""Cut a serial scanner's byte stream into one frame per scanned code.

Serial reads return whatever arrived (half a code, three codes, or nothing),
so frames are cut here, without I/O, and the port reader around it stays
trivial.  A scanner that loses its terminator (wrong setting, line noise)
must not make the gateway's memory grow, so a frame longer than
``max_length`` is cut off, reported once, and the rest of it discarded until
the next terminator.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Frame:
    """One line from the scanner; ``error`` is set when it is not the whole line."""

    data: bytes
    error: str | None = None


class LineFramer:
    """Accumulates chunks and returns complete frames, terminator removed.

    With the default CR terminator an LF right after it is dropped (scanners
    set to CR LF); empty lines are dropped, as no scanner sends an empty code.
    """

    def __init__(self, terminator: bytes = b"\r", max_length: int = 4096) -> None:
        if not terminator:
            raise ValueError("terminator must not be empty")
        if max_length < 1:
            raise ValueError("max_length must be at least 1")
        self.terminator = terminator
        self.max_length = max_length
        self._buffer = bytearray()
        self._discarding = False  # inside an over-long line, already reported
        self._skip_lf = False  # the last byte seen ended a CR-terminated frame

    def feed(self, chunk: bytes) -> list[Frame]:
        """Add bytes as they came from the port; return the frames they completed."""
        frames: list[Frame] = []
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
        if chunk:
            self._skip_lf = False
        self._buffer += chunk
        while True:
            end = self._buffer.find(self.terminator)
            if end < 0:
                break
            line = bytes(self._buffer[:end])
            del self._buffer[: end + len(self.terminator)]
            if self.terminator == b"\r":
                if self._buffer[:1] == b"\n":
                    del self._buffer[:1]
                elif not self._buffer:
                    self._skip_lf = True
            if self.terminator == b"\n" and line.endswith(b"\r"):
                line = line[:-1]
            if self._discarding:
                self._discarding = False
            elif len(line) > self.max_length:
                frames.append(self._too_long(line))
            elif line:
                frames.append(Frame(line))
        if not self._discarding and len(self._buffer) > self.max_length + len(self.terminator):
            frames.append(self._too_long(bytes(self._buffer)))
            self._discarding = True
        if self._discarding:
            # keep only what could be the start of a terminator split across chunks
            keep = len(self.terminator) - 1
            del self._buffer[: len(self._buffer) - keep if keep else len(self._buffer)]
        return frames

    def _too_long(self, line: bytes) -> Frame:
        return Frame(
            line[: self.max_length],
            f"line longer than {self.max_length} bytes: kept the first {self.max_length}, "
            "dropped the rest up to the next terminator",
        )
