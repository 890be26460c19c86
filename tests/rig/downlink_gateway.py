"""The gateway's down-link code with a list for a sink and a record of what the app was handed: for the
down-link document tests (single documents and documents in parts)."""

from __future__ import annotations

from pathlib import Path

from coldgate.contract.items import Event, EventType, Item
from coldgate.gateway.config import GatewayConfig
from coldgate.gateway.status import StatusErrors
from coldgate.gateway.uplink.downlink import Document, Downlink
from coldgate.gateway.uplink.mqtt_link import Message
from tests.rig.uplink import CLOCK, GATEWAY, SITE

__all__ = ["Gateway"]


class Gateway:
    """A down-link with a list for a sink and a record of what the app was handed.

    ``configuration``: the gateway's own, which master data's temperature classes are laid over."""

    def __init__(
        self, data_dir: Path, errors: StatusErrors | None = None, configuration: GatewayConfig | None = None
    ) -> None:
        self.items: list[Item] = []
        self.applied: list[tuple[str, int]] = []
        self.documents: list[Document] = []
        self.refuse: str | None = None
        self.downlink = Downlink(
            data_dir,
            gateway=GATEWAY,
            site=SITE,
            sink=self,
            clock=CLOCK,
            on_document=self.on_document,
            errors=errors,
            configuration=configuration,
        )

    def put(self, item: Item) -> None:
        self.items.append(item)

    def on_document(self, kind: str, document: Document) -> None:
        if self.refuse == kind:
            raise RuntimeError("the alarm relay named in this config is not wired")
        self.applied.append((kind, document.version))
        self.documents.append(document)

    def events(self) -> list[tuple[EventType, int | None]]:
        return [(i.event, i.data.get("version")) for i in self.items if isinstance(i, Event)]  # type: ignore[misc]

    def deliver(self, topic: str, payload: bytes) -> None:
        self.downlink.handle(Message(topic, payload, retain=True))
