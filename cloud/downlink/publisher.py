"""Publishes each gateway's down-link documents, retained, whenever they change and on a gateway's birth.

One thread with its own MQTT connection.  A pass runs when nudged (a catalog
write through the API: a recall reaches the gateways in about a second), and
otherwise every ``interval_s``, when it first asks the database whether the
catalog changed at all (``catalog_marker``) or a gateway came (back) online,
so an idle cloud does not rebuild documents.  New versions are recorded and
committed (``versions.due_documents``) before they are published QoS 1 and
retained; a publish the broker did not confirm is tried again next pass.  At
start every gateway's current documents are published again: the broker may
have lost its retained copies, and a gateway ignores a version it already
holds.

A document in parts is published part by part, each retained on its own
topic (``recall``, ``recall/2``, ...); it counts as published once the
broker confirmed every part.  When a new version has fewer parts than the
one before, the part topics it no longer uses are cleared (an empty retained
message deletes the broker's copy); a gateway ignores such a leftover anyway,
as a part of an older version.

Only one publisher may run per deployment (it numbers versions): it runs in
the process that runs the scheduler.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from sqlalchemy import Engine, select

from coldgate.cloud.config import CloudMqttConfig
from coldgate.cloud.db.models import Gateway
from coldgate.cloud.downlink.versions import Due, catalog_marker, due_documents
from coldgate.contract.topics import master_topic, recall_topic
from coldgate.mqtt_secrets import read_secret, tls_context

__all__ = ["DownlinkPublisher"]

log = logging.getLogger(__name__)
QOS = 1


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class DownlinkPublisher:
    """``start()``, ``nudge()`` after a catalog write, ``stop()``; ``publish_pass()`` runs one pass now."""

    def __init__(
        self,
        engine: Engine,
        mqtt: CloudMqttConfig,
        *,
        interval_s: float = 5.0,
        clock: Callable[[], datetime.datetime] = _utc_now,
    ) -> None:
        self.engine = engine
        self.config = mqtt
        self.interval_s = interval_s
        self.clock = clock
        self.client_id = f"{mqtt.client_id}-downlink"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None
        self._marker: tuple[Any, ...] | None = None
        self._births: dict[str, Any] = {}
        #: A publish the broker did not confirm: the next pass must run even if nothing changed.
        self._unconfirmed = True
        #: (gateway, kind) -> version the broker confirmed.
        self.confirmed: dict[tuple[str, str], int] = {}
        #: (gateway, kind) -> how many part topics this process has published retained documents on.
        self._parts: dict[tuple[str, str], int] = {}
        self._pass_lock = threading.Lock()
        self._client = self._make_client()

    def _make_client(self) -> paho.Client:
        v5 = self.config.protocol == "5"
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        )
        if self.config.username is not None:
            password = None
            if self.config.password_file is not None:
                password = read_secret(self.config.password_file, "mqtt.password_file")
            client.username_pw_set(self.config.username, password)
        if self.config.address.tls:
            client.tls_set_context(tls_context(self.config, "mqtt"))
        client.reconnect_delay_set(0.5, 10)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        return client

    def _on_connect(self, _c: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("%s: broker refused the connection: %s", self.client_id, reason)
            return
        self._connected.set()
        self.confirmed.clear()  # publish everything again on each (re)connect
        self._unconfirmed = True
        self._wake.set()

    def _on_disconnect(self, *_args: Any) -> None:
        self._connected.clear()

    # -- running ------------------------------------------------------------------------------------

    def start(self, wait_connected_s: float | None = 10.0) -> DownlinkPublisher:
        address = self.config.address
        self._client.connect_async(address.host, address.port, keepalive=30)
        self._client.loop_start()
        self._thread = threading.Thread(target=self._run, name=self.client_id, daemon=True)
        self._thread.start()
        if wait_connected_s is not None and not self._connected.wait(wait_connected_s):
            log.warning(
                "%s: not connected to %s within %g s; retrying", self.client_id, address, wait_connected_s
            )
        return self

    def nudge(self) -> None:
        """Something in the catalog changed: run a pass now."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._client.loop_stop()
        self._client.disconnect()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stop.is_set() or not self._connected.is_set():
                continue
            try:
                self.publish_pass()
            except Exception:
                log.exception("%s: pass failed; trying again in %g s", self.client_id, self.interval_s)

    # -- one pass -----------------------------------------------------------------------------------

    def _born(self) -> set[str]:
        """Gateways that came online (or rebooted) since the last pass."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(Gateway.id, Gateway.online, Gateway.boot, Gateway.state_since)).all()
        born = set()
        for row in rows:
            seen = (row.boot, row.state_since)
            if row.online and self._births.get(row.id) != seen:
                born.add(row.id)
            self._births[row.id] = seen if row.online else None
        return born

    def publish_pass(self) -> list[Due]:
        """Record what changed, then publish what is new, unconfirmed, or due to a gateway just born.

        One pass at a time: a pass called directly while the thread runs one waits for it (two passes at
        once would both number the same next version)."""
        with self._pass_lock:
            return self._publish_pass()

    def _publish_pass(self) -> list[Due]:
        with self.engine.connect() as conn:
            marker = catalog_marker(conn)
        born = self._born()
        if marker == self._marker and not born and not self._unconfirmed:
            return []
        with self.engine.begin() as conn:
            due = due_documents(conn, self.clock())
        self._marker = marker
        sent = []
        self._unconfirmed = False
        for doc in due:
            key = (doc.gateway, doc.kind)
            if doc.new or doc.gateway in born or self.confirmed.get(key) != doc.version:
                if self._publish(doc):
                    self.confirmed[key] = doc.version
                else:
                    self._unconfirmed = True  # the next pass tries again, catalog changed or not
                sent.append(doc)
        return sent

    def _publish(self, doc: Due) -> bool:
        name = doc.kind
        make_topic = master_topic if name == "master" else recall_topic
        key = (doc.gateway, doc.kind)
        used = max(doc.previous_parts, self._parts.get(key, 0))
        sends = [(make_topic(doc.site, doc.gateway, k), payload) for k, payload in enumerate(doc.parts, 1)]
        # Clearing topics no longer used comes after the parts of the new version: a gateway that sees it
        # has no part of the old version to wait for.
        sends += [(make_topic(doc.site, doc.gateway, k), b"") for k in range(len(doc.parts) + 1, used + 1)]
        infos = [self._client.publish(where, payload, qos=QOS, retain=True) for where, payload in sends]
        try:
            for info in infos:
                info.wait_for_publish(timeout=5.0)
        except (RuntimeError, ValueError) as exc:
            log.warning(
                "%s: %s v%d for %s not published: %s", self.client_id, name, doc.version, doc.gateway, exc
            )
            return False
        published = all(info.is_published() for info in infos)
        if published:
            self._parts[key] = len(doc.parts)
        if doc.new:
            in_parts = f" in {len(doc.parts)} parts" if len(doc.parts) > 1 else ""
            log.info(
                "%s: published %s v%d to %s (%d entries, %d bytes%s%s)", self.client_id, name, doc.version,
                doc.gateway, doc.built.entries, len(doc.payload), in_parts,
                f", {doc.built.left_out} left out" if doc.built.left_out else "",
            )  # fmt: skip
            for why in doc.built.why:
                log.warning("%s: %s v%d for %s: %s", self.client_id, name, doc.version, doc.gateway, why)
        return published
