"""A simulated LLRP 1.0.1 RFID reader for tests and the demo (see :mod:`simulator.llrp.reader`).

``messages`` packs and unpacks the binary frames; ``reader`` serves them over TCP to one
client at a time (sllurp's, or the gateway's), from a captured replay or generated reads.
"""

from coldgate.simulator.llrp.reader import (
    FixtureReplay,
    LlrpReader,
    LlrpReaderThread,
    ReportSource,
    TupleReads,
)

__all__ = ["FixtureReplay", "LlrpReader", "LlrpReaderThread", "ReportSource", "TupleReads"]
