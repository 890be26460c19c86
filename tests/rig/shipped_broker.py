"""Mosquitto as a site runs it: the shipped ``deploy/mosquitto/`` files, TLS, password files, ACLs.

The private broker of the other tests (``rig.mosquitto``) is open to anyone, on
purpose; this one is the production configuration with only what a test machine
must change: the paths under ``/etc/mosquitto`` and ``/var/lib/mosquitto`` point
into the test's folder, the three listeners bind to 127.0.0.1 on free ports, and
the broker runs as the current user.  The broker's certificate comes from a
throw-away CA made with ``openssl``; password files from ``mosquitto_passwd``,
and the gateways' CA (for the certificate listener) from ``coldgate cloud
gateways init-ca``, as an operator makes them.  A shipped file that names
another path fails here instead of on a site.
"""

from __future__ import annotations

import getpass
import shutil
import signal
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tests.rig.commands import run_ok
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.ports import free_port, wait_for_port

DEPLOY = Path(__file__).resolve().parent.parent.parent / "deploy" / "mosquitto"
GATEWAY_LISTENER, CLOUD_LISTENER, CERT_LISTENER = "listener 8883", "listener 8884", "listener 8885"


def make_test_ca(folder: Path) -> None:
    """``ca.crt`` and a broker certificate for 127.0.0.1 signed by it (``broker.crt``, ``broker.key``)."""
    folder.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    run_ok("openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
         "-subj", "/CN=Coldgate test CA", cwd=folder)  # fmt: skip
    run_ok("openssl", "req", *ec, "-keyout", "broker.key", "-out", "broker.csr", "-subj", "/CN=127.0.0.1",
         cwd=folder)  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run_ok("openssl", "x509", "-req", "-in", "broker.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "broker.crt", "-days", "2", "-extfile", "san.ext",
         cwd=folder)  # fmt: skip


def init_gateway_ca(folder: Path) -> None:
    """The gateways' CA and its empty CRL, made by the command an operator runs."""
    from click.testing import CliRunner

    from coldgate.cloud.cli import cloud

    result = CliRunner().invoke(cloud, ["gateways", "init-ca", "--ca-dir", str(folder)])
    assert result.exit_code == 0, result.output


def sqlite_cloud_config(folder: Path) -> Path:
    """A cloud TOML whose database is a SQLite file in ``folder``: where enrolments are recorded."""
    config = folder / "cloud.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{folder / "cloud.sqlite3"}"\n')
    return config


class ShippedBroker(MosquittoBroker):
    """The shipped configuration on three free ports: ``port`` for gateways with a password,
    ``cert_port`` for gateways with a certificate, ``cloud_port`` for the cloud."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, persistence=True)
        self.cloud_port = free_port()
        self.cert_port = free_port()
        self.certs = workdir / "certs"
        self.gateways_passwd = workdir / "coldgate-gateways.passwd"
        self.cloud_passwd = workdir / "coldgate-cloud.passwd"
        #: Where coldgate.conf's /etc/mosquitto/coldgate-gateway-ca/ lands.
        self.gateway_ca = workdir / "coldgate-gateway-ca"
        make_test_ca(self.certs)
        init_gateway_ca(self.gateway_ca)
        for name in ("coldgate.acl", "coldgate-cloud.acl"):
            shutil.copy(DEPLOY / name, workdir / name)
        self.gateways_passwd.touch()
        self.cloud_passwd.touch()

    @property
    def ca_file(self) -> Path:
        return self.certs / "ca.crt"

    def add_login(self, passwd: Path, username: str, password: str) -> None:
        run_ok("mosquitto_passwd", "-b", passwd, username, password)

    def remove_login(self, passwd: Path, username: str) -> None:
        """Revoke a login and make the running broker read its files again, as an operator would."""
        run_ok("mosquitto_passwd", "-D", passwd, username)
        self.reload()

    def reload(self) -> None:
        """``systemctl reload mosquitto``: SIGHUP, the broker reads its password and ACL files again."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGHUP)

    def _write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        text = (DEPLOY / "coldgate.conf").read_text()
        for shipped, here in (
            (GATEWAY_LISTENER, f"listener {self.port} {self.host}"),
            (CLOUD_LISTENER, f"listener {self.cloud_port} {self.host}"),
            (CERT_LISTENER, f"listener {self.cert_port} {self.host}"),
            ("/etc/mosquitto/certs/", f"{self.certs}/"),
            ("/etc/mosquitto/", f"{self.workdir}/"),
            ("/var/lib/mosquitto/", f"{self.data_dir}/"),
        ):
            if shipped not in text:
                raise AssertionError(f"deploy/mosquitto/coldgate.conf no longer has {shipped!r}")
            text = text.replace(shipped, here)
        local = [f"user {getpass.getuser()}", "log_dest stderr", "log_type error", "log_type warning"]
        self.conf_path.write_text(text + "\n" + "\n".join(local) + "\n")

    def start(self) -> None:
        super().start()
        wait_for_port(self.host, self.cloud_port, timeout=15)
        wait_for_port(self.host, self.cert_port, timeout=15)


@dataclass
class Client:
    """A connected (or refused) MQTT 5 client over TLS, recording what the broker answers."""

    client: paho.Client
    connack: int | None = None
    #: Why the connection failed before MQTT answered (a TLS handshake the broker refused).
    refused: str | None = None
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    suback: dict[int, list[int]] = field(default_factory=dict)
    puback: dict[int, int] = field(default_factory=dict)
    disconnected: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.answered = threading.Event()
        self.subscribed = threading.Condition(self.lock)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_disconnect = lambda *_a: self.disconnected.set()

    def _on_connect(self, _c: paho.Client, _u: object, _f: object, rc: paho.ReasonCode, _p: object) -> None:
        self.connack = rc.value
        self.answered.set()

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, msg.payload))

    def _on_subscribe(
        self, _c: paho.Client, _u: object, mid: int, codes: list[paho.ReasonCode], _p: object
    ) -> None:
        with self.subscribed:
            self.suback[mid] = [code.value for code in codes]
            self.subscribed.notify_all()

    def _on_publish(self, _c: paho.Client, _u: object, mid: int, rc: paho.ReasonCode, _p: object) -> None:
        with self.lock:
            self.puback[mid] = rc.value

    @property
    def connected(self) -> bool:
        return self.connack == 0 and not self.disconnected.is_set()

    def subscribe(self, topic: str) -> list[int]:
        """The SUBACK reason codes: 1 (granted QoS 1) or a failure such as 135 (not authorized)."""
        _, mid = self.client.subscribe(topic, qos=1)
        with self.subscribed:
            if not self.subscribed.wait_for(lambda: mid in self.suback, 10):
                raise AssertionError(f"no SUBACK for {topic}")
            return self.suback[mid]

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        """The PUBACK reason code: 0 accepted, 135 not authorized (MQTT 5)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        with self.lock:
            return self.puback.get(info.mid, -1)

    def received(self, topic: str) -> list[bytes]:
        with self.lock:
            return [payload for t, payload in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connect(
    broker: ShippedBroker,
    port: int,
    client_id: str,
    username: str | None,
    password: str = "",
    *,
    cert: tuple[Path, Path] | None = None,
) -> Client:
    """Connect over TLS (with a client certificate and key, if given) and wait for the broker's answer:
    ``connack`` 0, the refusal's reason code, or ``refused`` when the broker ended the TLS handshake."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    certfile, keyfile = (str(cert[0]), str(cert[1])) if cert else (None, None)
    client.tls_set(ca_certs=str(broker.ca_file), certfile=certfile, keyfile=keyfile)
    if username is not None:
        client.username_pw_set(username, password)
    client.reconnect_delay_set(60, 60)  # a refused client must not retry during the test
    handle = Client(client)
    try:
        client.connect(broker.host, port)
    except (ssl.SSLError, OSError) as exc:  # TLS 1.2: a refused client certificate ends the handshake
        handle.refused = f"{type(exc).__name__}: {exc}"
        return handle
    # Until CONNACK the loop runs here, not in paho's thread: a connection the broker drops (a client
    # certificate refused after a TLS 1.3 handshake) then ends at once instead of waiting to reconnect.
    deadline = time.monotonic() + 10
    while not handle.answered.is_set():
        rc = client.loop(timeout=0.05)
        if rc != paho.MQTT_ERR_SUCCESS:
            handle.refused = f"the broker closed the connection before CONNACK ({paho.error_string(rc)})"
            return handle
        if time.monotonic() > deadline:
            handle.close()
            raise AssertionError(f"{client_id}: no CONNACK")
    if handle.connack == 0:  # a refused login gets no loop thread to reconnect with
        client.loop_start()
    return handle
