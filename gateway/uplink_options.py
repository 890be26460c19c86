"""From the ``[uplink]`` table to a connection: secrets read from files, a TLS context built.

The config loader does not open files (``check-config`` runs on a workstation
without the Pi's /etc/coldgate), so a missing password or key file is found
here, at start, and reported as a ``ConfigError`` naming the key, instead of
as an endless series of failed connections.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from coldgate.configfile import ConfigError
from gateway.config import UplinkConfig
from gateway.mqtt_link import LinkOptions


def read_secret(path: str, key: str) -> str:
    """The first line of a secret file (editors and ``echo`` add a newline that is not the secret)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(key, f"cannot read {path}: {exc}") from None
    secret = text.splitlines()[0] if text else ""
    if not secret:
        raise ConfigError(key, f"{path} is empty")
    return secret


def tls_context(config: UplinkConfig, key: str = "uplink") -> ssl.SSLContext:
    """Server certificate checked against ``ca_file`` (or the system CAs), host name included;
    the client certificate when one is configured.  TLS 1.2 at least."""
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=config.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{key}.ca_file", f"cannot load {config.ca_file}: {exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if config.cert_file is not None:
        try:
            context.load_cert_chain(config.cert_file, config.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"{key}.cert_file", f"cannot load {config.cert_file} with {config.key_file}: {exc}"
            ) from None
    return context


def link_options(config: UplinkConfig, *, client_id: str, key: str = "uplink") -> LinkOptions:
    """Everything the MQTT link needs, checked now; raises ``ConfigError``."""
    address = config.address
    password = read_secret(config.password_file, f"{key}.password_file") if config.password_file else None
    return LinkOptions(
        host=address.host,
        port=address.port,
        client_id=config.client_id or client_id,
        protocol=config.protocol,
        keepalive_s=config.keepalive_s,
        username=config.username,
        password=password,
        tls=tls_context(config, key) if address.tls else None,
    )
