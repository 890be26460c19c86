"""The cloud's retained documents at the edge: configuration, master data, recall list.

The edge works alone (DESIGN.md, principle 3): each document in force is kept
on disk exactly as it arrived, so a gateway that reboots without network runs
on the last version it applied.  The broker re-delivers retained documents
on every subscribe, so handling one must be idempotent: a version at or below
the one in force is ignored, and so is a version already rejected (or every
reconnect would log the same rejection again).  A new version is checked
completely (the contract, then for configuration the same loader a TOML file
goes through) and handed to the app before it is saved: a document the app
cannot take is rejected like an invalid one, and the old one stays in force.
The outcome is an ``event`` item in the outbox (the audit trail) and, for a
rejection, a ``StatusError`` in the next status (what an operator sees).

A large master data or recall list comes in parts, each retained on a topic
of its own (``.../down/recall``, ``.../down/recall/2``, ...), in any order.
The parts of one version are collected, and the version is applied only once
parts 1..n all arrived with the same version, issue time and count n: they
are then put together into the one document they make (checked like a
document that came whole) and saved as one file.  A part of a version older
than the one being collected is ignored, a part of a newer one starts the
collection over; parts that do not fit together reject the version.  Until
then the version in force stays, whatever is missing.

The cloud owns the temperature classes and sends them in master data
(issue 14).  Given the gateway's configuration, the down-link reads a master
data version's classes as the gateway reads its own (``gateway.pushed_classes``)
and lays them over the configuration in force; a version whose classes the
gateway cannot take is rejected as a whole, like any other broken document, so
zones are never judged by half of what QA sent.  Each document in force then
carries the configuration the gateway runs with (``Document.config``): the
configuration in force with the master data's classes laid over it, also when
a later configuration version arrives.

A corrupt cached file is reported and ignored, never fatal: the retained copy
on the broker will bring the document back once the network is there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import msgspec

from coldgate.configfile import ConfigError
from coldgate.contract.codec import MAX_PAYLOAD_BYTES, decode, encode
from coldgate.contract.downlink import ConfigUpdate, MasterData, RecallList
from coldgate.contract.errors import ContractError, FieldError
from coldgate.contract.items import Event, EventType
from coldgate.contract.topics import config_topic, master_topic, parse_topic, recall_topic
from coldgate.contract.uplink import DocumentVersions
from coldgate.gateway.clock import Clock
from coldgate.gateway.config import GatewayConfig, TemperatureClass
from coldgate.gateway.config_load import gateway_config_from_document
from coldgate.gateway.observations import Sink, stamp_fields
from coldgate.gateway.pushed_classes import effective_config, pushed_classes
from coldgate.gateway.status import StatusErrors
from coldgate.gateway.uplink.mqtt_link import Message

log = logging.getLogger(__name__)

DocumentMessage = ConfigUpdate | MasterData | RecallList


class Kind(StrEnum):
    CONFIG = "config"
    MASTER = "master"
    RECALL = "recall"


_TYPES: dict[Kind, type[DocumentMessage]] = {
    Kind.CONFIG: ConfigUpdate,
    Kind.MASTER: MasterData,
    Kind.RECALL: RecallList,
}
_CACHE_DECODERS: dict[Kind, msgspec.json.Decoder[Any]] = {
    k: msgspec.json.Decoder(t) for k, t in _TYPES.items()
}
_APPLIED = {
    Kind.CONFIG: EventType.CONFIG_APPLIED,
    Kind.MASTER: EventType.MASTER_APPLIED,
    Kind.RECALL: EventType.RECALL_APPLIED,
}
_REJECTED = {
    Kind.CONFIG: EventType.CONFIG_REJECTED,
    Kind.MASTER: EventType.MASTER_REJECTED,
    Kind.RECALL: EventType.RECALL_REJECTED,
}


@dataclass(frozen=True, slots=True)
class Document:
    """A document in force.

    ``config``: the configuration to run with once this document is in force, with the classes of
    the master data in force laid over it; for kind ``config`` the pushed configuration, for kind
    ``master`` the configuration in force (``None`` when the down-link was given none).
    ``configured``: kind ``config``, the pushed configuration as it came, which later master data is
    laid over.  ``classes``: kind ``master``, its temperature classes as the gateway reads them.
    """

    kind: Kind
    version: int
    issued: int
    message: DocumentMessage
    config: GatewayConfig | None = None
    configured: GatewayConfig | None = None
    classes: tuple[TemperatureClass, ...] = ()


class _VersionProbe(msgspec.Struct):
    version: Any = None


@dataclass(slots=True)
class _Parts:
    """The parts of one version of a document in parts, as they arrive."""

    version: int
    issued: int
    count: int
    received: dict[int, tuple[MasterData | RecallList, bytes]]


def _merge(parts: list[MasterData | RecallList]) -> MasterData | RecallList:
    """The document parts 1..n make: the first part's header, every part's entries in order."""
    first = parts[0]
    names = ("temperature_classes", "products", "batches") if isinstance(first, MasterData) else ("entries",)
    lists = {name: [entry for part in parts for entry in getattr(part, name)] for name in names}
    return msgspec.structs.replace(first, part=1, parts=1, **lists)


class Downlink:
    """``Downlink(data_dir, gateway=..., site=..., sink=outbox, clock=clock, on_document=app.apply)``.

    ``configuration``: the gateway's own (its file's), which the classes of master data are laid
    over until a configuration version replaces it; without it a master data version's classes are
    still checked one by one, and ``Document.config`` of master data is ``None``.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        gateway: str,
        site: str,
        sink: Sink,
        clock: Clock,
        on_document: Callable[[str, Document], None] | None = None,
        errors: StatusErrors | None = None,
        configuration: GatewayConfig | None = None,
    ) -> None:
        self.directory = Path(data_dir) / "downlink"
        self.configuration = configuration
        self.gateway = gateway
        self.site = site
        self.sink = sink
        self.clock = clock
        self.on_document = on_document
        self.errors = errors if errors is not None else StatusErrors()
        self.topics: dict[str, Kind] = {
            config_topic(site, gateway): Kind.CONFIG,
            master_topic(site, gateway): Kind.MASTER,
            recall_topic(site, gateway): Kind.RECALL,
        }
        self._current: dict[Kind, Document] = {}
        self._rejected: dict[Kind, int] = {}
        self._parts: dict[Kind, _Parts] = {}

    @property
    def versions(self) -> DocumentVersions:
        """What the status reports as in force."""
        return DocumentVersions(**{kind.value: doc.version for kind, doc in self._current.items()})

    def current(self, kind: str) -> Document | None:
        return self._current.get(Kind(kind))

    def path(self, kind: str) -> Path:
        return self.directory / f"{Kind(kind).value}.json"

    # -- start-up -----------------------------------------------------------------------------------

    def load(self) -> DocumentVersions:
        """Bring the cached documents into force (``on_document`` is called for each); never raises."""
        for kind in Kind:
            path = self.path(kind)
            if not path.exists():
                continue
            try:
                data = path.read_bytes()
                message = _decode_cached(data, kind)
                if message.gateway != self.gateway:
                    raise ValueError(f"it is for gateway {message.gateway!r}, not {self.gateway!r}")
                document = self._check(kind, message, str(path))
                self._hand_over(kind, document)
            except Exception as exc:  # a bad cache must never stop the gateway
                text = f"cached {kind} {path} ignored: {exc}"
                log.warning("%s", text)
                self.errors.add(f"{kind}_cache_invalid", text, self.clock.stamp().wall_ms)
                continue
            self._current[kind] = document
            log.info("%s version %d in force from %s", kind, document.version, path)
        return self.versions

    # -- from the broker ----------------------------------------------------------------------------

    def handle(self, message: Message) -> None:
        """The link's handler for the document topics (and their part topics)."""
        kind = self._kind(message.topic)
        if kind is None:
            return
        if not message.payload:  # the broker's "retained message deleted" marker: keep ours
            log.info("retained %s cleared on the broker (%s); keeping what is in force", kind, message.topic)
            return
        try:
            incoming = decode(message.payload, _TYPES[kind], message.topic)
        except ContractError as exc:
            version = _probe_version(message.payload)
            if not self._stale(kind, version):
                self._reject(kind, version, f"{exc.path}: {exc.reason}")
            return
        if self._stale(kind, incoming.version):
            return
        payload = message.payload
        if not isinstance(incoming, ConfigUpdate):
            topic_part = parse_topic(message.topic).part
            if incoming.part != topic_part:
                self._drop_parts(kind, incoming.version)
                self._reject(kind, incoming.version, f"$.part: part {incoming.part} arrived on the topic of "
                             f"part {topic_part}")  # fmt: skip
                return
            if incoming.parts > 1:
                merged = self._collect(kind, incoming, payload)
                if merged is None:
                    return
                incoming, payload = merged
        self._apply(kind, incoming, payload, message.topic)

    def _kind(self, topic: str) -> Kind | None:
        kind = self.topics.get(topic)
        if kind is not None:
            return kind
        try:
            info = parse_topic(topic)
        except ContractError:
            return None
        if info.part == 1 or info.site != self.site or info.gateway != self.gateway:
            return None
        return self.topics.get(topic.rsplit("/", 1)[0])

    def _collect(
        self, kind: Kind, incoming: MasterData | RecallList, payload: bytes
    ) -> tuple[DocumentMessage, bytes] | None:
        """Keep one part; the document the parts make once they are all there (``None`` until then, and
        after a rejection)."""
        pending = self._parts.get(kind)
        if pending is not None and incoming.version < pending.version:
            log.debug("%s v%d part %d ignored: collecting v%d", kind, incoming.version, incoming.part,
                      pending.version)  # fmt: skip
            return None
        if pending is None or incoming.version > pending.version:
            if pending is not None:
                log.info("%s v%d overtaken by v%d with %d of %d parts received", kind, pending.version,
                         incoming.version, len(pending.received), pending.count)  # fmt: skip
            pending = self._parts[kind] = _Parts(incoming.version, incoming.issued, incoming.parts, {})
        problem = None
        if incoming.parts != pending.count:
            problem = (
                f"part {incoming.part} says {incoming.parts} parts, an earlier part said {pending.count}"
            )
        elif incoming.issued != pending.issued:
            problem = (f"part {incoming.part} was issued at {incoming.issued}, an earlier part at "
                       f"{pending.issued}")  # fmt: skip
        elif incoming.part in pending.received and pending.received[incoming.part][1] != payload:
            problem = f"part {incoming.part} arrived twice with different content"
        if problem is not None:
            del self._parts[kind]
            self._reject(kind, incoming.version, f"$.parts: {problem}")
            return None
        pending.received[incoming.part] = (incoming, payload)
        if len(pending.received) < pending.count:
            log.debug("%s v%d: %d of %d parts", kind, pending.version, len(pending.received), pending.count)
            return None
        del self._parts[kind]
        parts = [pending.received[k][0] for k in range(1, pending.count + 1)]
        try:
            # Each part's fields were checked as it was decoded; building the whole checks the rules
            # across the entries (unique lots, known classes).
            whole = _merge(parts)
        except ValueError as exc:
            path, reason = (f"$.{exc.field}", exc.reason) if isinstance(exc, FieldError) else ("$", str(exc))
            self._reject(
                kind, incoming.version, f"{path}: {reason} (in the {pending.count} parts put together)"
            )
            return None
        return whole, encode(whole)

    def _drop_parts(self, kind: Kind, version: int) -> None:
        """Forget the parts collected of ``version`` or older (those of a newer version stay)."""
        pending = self._parts.get(kind)
        if pending is not None and pending.version <= version:
            del self._parts[kind]

    def _apply(self, kind: Kind, incoming: DocumentMessage, payload: bytes, topic: str) -> None:
        try:
            document = self._check(kind, incoming, f"mqtt:{topic}")
        except (ConfigError, ValueError) as exc:
            self._reject(kind, incoming.version, str(exc))
            return
        try:
            self._hand_over(kind, document)
        except Exception as exc:
            log.exception("%s version %d could not be applied", kind, document.version)
            self._reject(kind, incoming.version, f"not applied: {exc}")
            return
        self._current[kind] = document
        self._drop_parts(kind, document.version)
        try:
            self._save(kind, payload)
        except OSError as exc:
            text = f"{kind} version {document.version} applied but not saved: {exc}"
            log.error("%s", text)
            self.errors.add(f"{kind}_not_saved", text, self.clock.stamp().wall_ms)
        self._event(_APPLIED[kind], f"{kind} version {document.version} applied", kind, document.version)

    # -- the parts ----------------------------------------------------------------------------------

    def _stale(self, kind: Kind, version: int | None) -> bool:
        """At or below the version in force, or the version already rejected: a re-delivery."""
        current = self._current.get(kind)
        if version is not None and current is not None and version <= current.version:
            log.debug("%s version %d ignored: %d in force", kind, version, current.version)
            return True
        return version is not None and self._rejected.get(kind) == version

    def _check(self, kind: Kind, message: DocumentMessage, source: str) -> Document:
        if isinstance(message, ConfigUpdate):
            configured = gateway_config_from_document(message.config, source_name=source)
            if configured.gateway.id != self.gateway or configured.gateway.site != self.site:
                raise ConfigError(
                    "gateway.id",
                    f"the configuration is for {configured.gateway.site}/{configured.gateway.id}, "
                    f"this gateway is {self.site}/{self.gateway}",
                    file=source,
                )
            master = self._current.get(Kind.MASTER)
            config = effective_config(configured, master.classes, source) if master else configured
            return Document(kind, message.version, message.issued, message, config, configured)
        if isinstance(message, MasterData):
            classes = pushed_classes(message, source)
            base = self._configured()
            config = effective_config(base, classes, source) if base is not None else None
            return Document(kind, message.version, message.issued, message, config, classes=classes)
        return Document(kind, message.version, message.issued, message)

    def _configured(self) -> GatewayConfig | None:
        """The configuration in force before master data's classes: the last configuration version
        applied, else the gateway's own."""
        current = self._current.get(Kind.CONFIG)
        return current.configured if current is not None else self.configuration

    def _hand_over(self, kind: Kind, document: Document) -> None:
        if self.on_document is not None:
            self.on_document(kind.value, document)

    def _save(self, kind: Kind, payload: bytes) -> None:
        """Write a temporary file, fsync, rename over the old one, fsync the directory: after a power
        cut the file is the old version or the new one, never half of each."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(kind)
        temporary = path.with_name(path.name + ".tmp")
        with open(temporary, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def _reject(self, kind: Kind, version: int | None, reason: str) -> None:
        if version is not None:
            self._rejected[kind] = version
        what = f"{kind} version {version}" if version is not None else f"{kind} (no readable version)"
        kept = self._current.get(kind)
        keeping = f"; keeping version {kept.version}" if kept else "; none in force"
        text = f"{what}: {reason}"
        log.error("%s rejected: %s%s", what, reason, keeping)
        self.errors.add(f"{kind}_rejected", text, self.clock.stamp().wall_ms)
        self._event(_REJECTED[kind], f"{text}{keeping}", kind, version)

    def _event(self, event: EventType, detail: str, kind: Kind, version: int | None) -> None:
        data: dict[str, str | int] = {"kind": kind.value}
        if version is not None:
            data["version"] = version
        item = Event(
            **stamp_fields(self.clock.stamp()),  # type: ignore[arg-type]
            event=event,
            detail=detail[:1000],
            data=data,
        )
        try:
            self.sink.put(item)
        except Exception:
            log.exception("could not record %s", event)


def _decode_cached(data: bytes, kind: Kind) -> DocumentMessage:
    """A cached document, which may be larger than one message (the parts of a document in parts, put
    together): the contract's decoder, without its cap on the size of one message."""
    if len(data) <= MAX_PAYLOAD_BYTES:
        return decode(data, _TYPES[kind])
    try:
        return _CACHE_DECODERS[kind].decode(data)
    except msgspec.MsgspecError as exc:
        raise ValueError(str(exc)) from None


def _probe_version(payload: bytes) -> int | None:
    try:
        version = msgspec.json.decode(payload, type=_VersionProbe).version
    except (msgspec.MsgspecError, UnicodeError, RecursionError):
        return None
    return version if type(version) is int and 1 <= version < 2**63 else None
