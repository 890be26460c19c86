"""The two up-link messages: the batch that carries items, and the gateway status.

Items travel in batches because a QoS 1 publish per reading would saturate the
client (paho manages ~10k msg/s and 16-bit message ids).  A batch declares the
range of sequence numbers it covers, so the cloud can acknowledge
cumulatively even when the outbox thinned items out: a sequence number inside
the range but absent from `items` was dropped on purpose (and a `gap` item
with cause `outbox_thinned` says so).

The status is not in the outbox: it is a retained snapshot (birth, heartbeat,
last will) whose newest copy is all that matters.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec
from msgspec import Meta

from coldgate.contract.errors import FieldError
from coldgate.contract.ids import (
    BootId,
    Count,
    DocVersion,
    EpochMs,
    Id,
    MonoMs,
    Seq,
    ShortText,
    StreamId,
    Text,
    check_finite,
    doc,
)
from coldgate.contract.items import Item
from coldgate.contract.version import Version

MAX_BATCH_ITEMS = 10_000
#: A connected gateway publishes its status (with ``last_seq``) whenever it has numbered this many
#: items since it last announced: the cloud stores a batch only within a window ahead of the
#: announced ``last_seq`` (docs/contract.md, "The sequence window").
ANNOUNCE_EVERY_ITEMS = 128


class Batch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Items from one gateway's outbox, oldest first.

    Rules: `items` are in strictly increasing `seq` order (gaps allowed);
    `items[0].seq` >= `first_seq`; `items[-1].seq` == `last_seq`.
    Every sequence number in `first_seq..last_seq` that is not in `items`
    was deliberately dropped by the gateway and will never be sent.
    """

    v: Version
    site: Annotated[Id, doc("Site id; must match the topic.")]
    gateway: Annotated[Id, doc("Gateway id; must match the topic.")]
    boot: Annotated[BootId, doc("Boot id of the sender now; items may come from earlier boots.")]
    stream: Annotated[
        StreamId,
        doc(
            "Id of the outbox that numbered the items, made when its database was created. "
            "Sequence numbers are unique per (gateway, stream): a replaced SD card starts a new stream."
        ),
    ]
    first_seq: Annotated[Seq, doc("First sequence number this batch covers.")]
    last_seq: Annotated[Seq, doc("Last sequence number this batch covers: the last item's.")]
    sent: Annotated[EpochMs, doc("Wall time the batch was built.")]
    items: Annotated[
        list[Item],
        Meta(min_length=1, max_length=MAX_BATCH_ITEMS, description="Items, by `kind`."),
    ]

    def __post_init__(self) -> None:
        if not self.items:  # decoding checks min_length first; this guards code-built batches
            raise FieldError("items", "a batch needs at least one item")
        if self.first_seq > self.last_seq:
            raise FieldError("last_seq", f"last_seq {self.last_seq} is below first_seq {self.first_seq}")
        if self.items[0].seq < self.first_seq:
            raise FieldError("items[0].seq", f"seq {self.items[0].seq} is below first_seq {self.first_seq}")
        previous = self.items[0].seq
        for index in range(1, len(self.items)):
            seq = self.items[index].seq
            if seq <= previous:
                raise FieldError(
                    f"items[{index}].seq", f"seq {seq} does not increase (previous item: {previous})"
                )
            previous = seq
        if previous != self.last_seq:
            raise FieldError("last_seq", f"last_seq {self.last_seq} is not the last item's seq {previous}")


class _Part(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    pass


class SensorState(_Part, kw_only=True):
    """How polling one sensor goes."""

    id: Annotated[Id, doc("Sensor id.")]
    online: Annotated[bool, doc("The sensor answered its last poll.")]
    last_poll: Annotated[EpochMs | None, doc("Last successful poll.")] = None
    lag_p50_ms: Annotated[Count | None, doc("Median poll lag behind schedule.")] = None
    lag_p95_ms: Annotated[Count | None, doc("95th percentile poll lag.")] = None
    scheduled: Annotated[Count | None, doc("Polls due since the gateway started.")] = None
    served: Annotated[Count | None, doc("Polls started within half an interval of their slot.")] = None
    missed: Annotated[Count | None, doc("Slots skipped: the line was busy or the gateway stalled.")] = None
    error: Annotated[ShortText | None, doc("Last error, if offline or failing.")] = None


class LinkState(_Part, kw_only=True):
    """A reader's or scanner's connection."""

    id: Annotated[Id, doc("Reader or scanner id.")]
    online: Annotated[bool, doc("Connected and working.")]
    since: Annotated[EpochMs | None, doc("When it entered this state.")] = None
    error: ShortText | None = None


class ClockState(_Part, kw_only=True):
    """The gateway's wall clock now; with `mono`, a time anchor for the boot."""

    synced: Annotated[bool, doc("Kernel clock NTP-synchronised now.")]
    mono: Annotated[MonoMs | None, doc("Monotonic clock at `ts`: an anchor for this boot.")] = None
    offset_ms: Annotated[float | None, doc("Estimated offset from the time source.")] = None
    source: Annotated[ShortText | None, doc("Time source, e.g. chrony, ntp, gps.")] = None

    def __post_init__(self) -> None:
        check_finite(self.offset_ms, "offset_ms")


class AlarmState(_Part, kw_only=True):
    """The local alarm that works without the cloud."""

    active: Annotated[bool, doc("An alert at or above the alarm's severity is open.")]
    sounding: Annotated[bool, doc("The siren/light is on: active, not silenced or acknowledged.")] = False
    silenced: Annotated[bool, doc("Muted by an operator until a new alert is raised.")] = False
    acknowledged: Annotated[bool, doc("An operator has taken charge (also mutes).")] = False
    alerts: Annotated[list[Id], Meta(max_length=1000), doc("Open alert ids.")] = []


class StatusError(_Part, kw_only=True):
    """A problem the gateway wants an operator to see, e.g. a rejected config."""

    kind: Annotated[Id, doc("What failed, e.g. config_rejected, ack_ahead.")]
    message: Text
    ts: Annotated[EpochMs, doc("When it happened.")]


class DocumentVersions(_Part, kw_only=True):
    """Versions of the down-link documents a gateway has applied (null: none yet)."""

    config: DocVersion | None = None
    master: DocVersion | None = None
    recall: DocVersion | None = None


class TopologyZone(_Part, kw_only=True):
    """A zone of the gateway's configuration: a room, freezer, vehicle... it judges by one class."""

    id: Id
    temperature_class: Annotated[Id, doc("The class the zone is judged by.")]
    transport: Annotated[bool, doc("A vehicle or container rather than a room.")] = False
    description: ShortText = ""


class TopologyNode(_Part, kw_only=True):
    """A sensor, reader or scanner of the configuration and where the configuration puts it."""

    id: Id
    zone: Annotated[Id | None, doc("The zone it watches or stands in.")] = None
    door: Annotated[Id | None, doc("The dock door it reads at (readers, scanners).")] = None


class Topology(_Part, kw_only=True):
    """What the gateway's configuration holds, with its ids (added 2026-12-06).

    The cloud compares it with the placements it keeps, proposes the missing
    ones and shows where the two disagree (drift).  Rule: ids are unique per
    list.
    """

    zones: Annotated[list[TopologyZone], Meta(max_length=1024)] = []
    sensors: Annotated[list[TopologyNode], Meta(max_length=4096)] = []
    readers: Annotated[list[TopologyNode], Meta(max_length=256)] = []
    scanners: Annotated[list[TopologyNode], Meta(max_length=256)] = []

    def __post_init__(self) -> None:
        for name in ("zones", "sensors", "readers", "scanners"):
            seen: set[str] = set()
            for index, entry in enumerate(getattr(self, name)):
                if entry.id in seen:
                    raise FieldError(f"{name}[{index}].id", f"duplicate {entry.id!r}")
                seen.add(entry.id)


class State(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class Status(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Birth, heartbeat and last will of a gateway (retained).

    A last will holds only the required fields with `state` offline and
    `will` true; its `ts` is when the will was registered (at connect).
    """

    v: Version
    site: Annotated[Id, doc("Site id; must match the topic.")]
    gateway: Annotated[Id, doc("Gateway id; must match the topic.")]
    boot: Annotated[BootId, doc("Current boot id.")]
    ts: Annotated[EpochMs, doc("When this status was taken.")]
    state: Annotated[State, doc("online (birth, heartbeat) or offline (shutdown, will).")]
    will: Annotated[bool, doc("True when the broker published this as the last will.")] = False
    software: Annotated[ShortText | None, doc("Gateway software version.")] = None
    heartbeat_s: Annotated[Count | None, doc("Seconds until the next heartbeat at the latest.")] = None
    uptime_s: Annotated[Count | None, doc("Seconds since the gateway process started.")] = None
    outbox_depth: Annotated[Count | None, doc("Items waiting for acknowledgement.")] = None
    oldest_unacked: Annotated[EpochMs | None, doc("ts of the oldest unacknowledged item.")] = None
    last_seq: Annotated[Seq | None, doc("Highest sequence number assigned so far.")] = None
    last_acked_seq: Annotated[Seq | None, doc("Highest sequence number acknowledged.")] = None
    clock: ClockState | None = None
    alarm: AlarmState | None = None
    sensors: Annotated[list[SensorState], Meta(max_length=4096, description="One per sensor.")] = []
    readers: Annotated[list[LinkState], Meta(max_length=256, description="One per reader.")] = []
    scanners: Annotated[list[LinkState], Meta(max_length=256, description="One per scanner.")] = []
    versions: Annotated[DocumentVersions | None, doc("Down-link documents in force.")] = None
    errors: Annotated[
        list[StatusError], Meta(max_length=100, description="Recent problems, newest last.")
    ] = []
    topology: Annotated[
        Topology | None, doc("The configuration's zones, sensors, readers, scanners (added 2026-12-06).")
    ] = None

    def __post_init__(self) -> None:
        for name in ("sensors", "readers", "scanners"):
            seen: set[str] = set()
            for index, entry in enumerate(getattr(self, name)):
                if entry.id in seen:
                    raise FieldError(f"{name}[{index}].id", f"duplicate {entry.id!r}")
                seen.add(entry.id)
