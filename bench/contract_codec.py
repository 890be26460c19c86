"""How fast the wire contract encodes and decodes an up-link batch.

A Pi gateway encodes every batch it publishes and the cloud decodes every batch
it ingests, so both sides' cost per reading sets a ceiling on throughput.
Measures encode, full validating decode (``decode_topic``, as ingest does) and
the bytes per reading on the wire, for batches of 500 readings.
"""

from __future__ import annotations

import argparse
import time

from coldgate.contract import CONTRACT_VERSION, Batch, Reading, decode_topic, encode
from coldgate.contract.items import Quality
from coldgate.contract.topics import batch_topic
from coldgate.contract.units import Quantity, Unit

BOOT = "9f1c2e4a7b3d4c5e8f6a1b2c3d4e5f60"


def make_batch(first_seq: int, size: int) -> Batch:
    items = [
        Reading(
            seq=first_seq + i,
            ts=1_764_000_000_000 + i * 1000,
            boot=BOOT,
            mono=5_000_000 + i * 1000,
            synced=True,
            sensor=f"coldroom-1-t{i % 10}",
            quantity=Quantity.TEMPERATURE if i % 2 else Quantity.HUMIDITY,
            value=4.7 if i % 2 else 45.3,
            unit=Unit.CEL if i % 2 else Unit.P1,
            quality=Quality.OK,
        )
        for i in range(size)
    ]
    return Batch(
        v=CONTRACT_VERSION,
        site="ams-dc1",
        gateway="gw01",
        boot=BOOT,
        stream="5b2d7c4e1a9f4e3b8c6d0a1f2e3b4c5d",
        first_seq=first_seq,
        last_seq=first_seq + size - 1,
        sent=1_764_000_600_000,
        items=items,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=500, help="readings per batch")
    parser.add_argument("--seconds", type=float, default=3.0, help="time spent on each measurement")
    args = parser.parse_args()

    batch = make_batch(1, args.batch)
    topic = batch_topic("ams-dc1", "gw01")
    payload = encode(batch)

    def rate(step: object) -> float:
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            step()  # type: ignore[operator]
            count += 1
        return count * args.batch / (time.perf_counter() - start)

    encode_rate = rate(lambda: encode(batch))
    decode_rate = rate(lambda: decode_topic(topic, payload))
    per_reading = len(payload) / args.batch
    print(f"batch of {args.batch} readings: {len(payload)} bytes")
    print(f"encode: {encode_rate:,.0f} readings/s")
    print(f"decode+validate: {decode_rate:,.0f} readings/s")
    print(
        f"RESULT encode_readings_per_s={encode_rate:.0f} decode_readings_per_s={decode_rate:.0f} "
        f"bytes_per_reading={per_reading:.1f}"
    )


if __name__ == "__main__":
    main()
