"""Value types and tables shared by the gateway and cloud configs.

Constraints live on the types (``msgspec.Meta``) so a bad value is rejected
while the file is read, and the error text is generated from the same
declaration (see ``coldgate.configdescribe``).  Checks that need two keys at
once (a client certificate without its key) are plain functions raising
``ConfigError`` with the key to fix.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, NamedTuple

from msgspec import Meta

from coldgate.configfile import ConfigBlock, ConfigError
from coldgate.contract.ids import ID_PATTERN

#: Ids become MQTT topic levels and file names, so they follow the wire
#: contract's alphabet exactly (an id the config accepts must be sendable).
Id = Annotated[
    str,
    Meta(
        pattern=ID_PATTERN,
        extra={
            "expected": 'an id of 1 to 64 letters, digits, "_", "." or "-", starting with a letter or digit'
        },
    ),
]

#: Services run from systemd with cwd "/": a relative path would silently mean /<path>.
AbsolutePath = Annotated[
    str, Meta(pattern=r"^/[^\x00]*\Z", extra={"expected": "an absolute path (starting with /)"})
]

NonEmptyStr = Annotated[str, Meta(min_length=1)]

Host = Annotated[
    str,
    Meta(
        pattern=r"^([A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)\Z",
        extra={"expected": "a host name or IP address"},
    ),
]

TcpPort = Annotated[int, Meta(ge=1, le=65535)]

#: Serial device: a path (prefer /dev/serial/by-id/..., stable across reboots and
#: USB re-plugging) or a pyserial URL such as socket://10.0.0.5:4196.
SerialPort = Annotated[
    str,
    Meta(
        pattern=r"^(/[^\x00]+|[a-z][a-z0-9+]*://[^\x00]+)\Z",
        extra={
            "expected": 'a serial device like "/dev/ttyUSB0" or a pyserial URL like "socket://10.0.0.5:4196"'
        },
    ),
]

BaudRate = Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200]
Parity = Literal["N", "E", "O"]
StopBits = Literal[1, 2]
ByteSize = Literal[7, 8]

_BROKER = re.compile(
    r"^(?P<scheme>mqtts?)://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)"
    r"(:(?P<port>[0-9]{1,5}))?/?\Z"
)
BrokerUrl = Annotated[
    str,
    Meta(
        pattern=_BROKER.pattern,
        extra={
            "expected": 'an MQTT broker URL like "mqtts://broker.example.com:8883" '
            "(mqtt:// or mqtts://, port optional)"
        },
    ),
]


class BrokerAddress(NamedTuple):
    host: str
    port: int
    tls: bool


def parse_broker_url(url: str) -> BrokerAddress:
    """Split a ``BrokerUrl``; the port defaults to 1883, or 8883 for mqtts."""
    match = _BROKER.match(url)
    if match is None:
        raise ValueError(f"not an MQTT broker URL: {url!r}")
    tls = match["scheme"] == "mqtts"
    port = int(match["port"]) if match["port"] else (8883 if tls else 1883)
    return BrokerAddress(match["host"].strip("[]"), port, tls)


class MqttConnection(ConfigBlock, kw_only=True):
    """How to reach the MQTT broker; shared by the gateway uplink and cloud ingest.

    Secrets are read from files (``password_file``, ``key_file``) so the config
    itself can be world-readable, copied into tickets and kept in git.  Files
    are not opened here: ``check-config`` must work on a workstation without
    the Pi's /etc/coldgate; the client reports a missing file when it starts.
    """

    broker: BrokerUrl = "mqtt://localhost:1883"
    client_id: Id | None = None
    username: NonEmptyStr | None = None
    password_file: AbsolutePath | None = None
    ca_file: AbsolutePath | None = None
    cert_file: AbsolutePath | None = None
    key_file: AbsolutePath | None = None
    keepalive_s: Annotated[int, Meta(ge=5, le=65535, extra={"unit": "seconds"})] = 60

    @property
    def address(self) -> BrokerAddress:
        return parse_broker_url(self.broker)


def check_mqtt_connection(conn: MqttConnection, key: str) -> None:
    """Cross-key rules of an MQTT connection table named ``key`` (``uplink``, ``mqtt``)."""
    address = conn.address
    if not 1 <= address.port <= 65535:
        raise ConfigError(f"{key}.broker", f"port {address.port} is outside 1..65535")
    if not address.tls:
        for name in ("ca_file", "cert_file", "key_file"):
            if getattr(conn, name) is not None:
                raise ConfigError(
                    f"{key}.{name}",
                    f'only used with TLS, but broker "{conn.broker}" is plain MQTT; use mqtts://',
                )
    if (conn.cert_file is None) != (conn.key_file is None):
        missing = "key_file" if conn.key_file is None else "cert_file"
        raise ConfigError(
            f"{key}.{missing}",
            "required when the other of cert_file/key_file is set "
            "(a client certificate and its private key go together)",
        )
    if conn.password_file is not None and conn.username is None:
        raise ConfigError(
            f"{key}.username",
            "required when password_file is set (MQTT sends a password only with a user name)",
        )
