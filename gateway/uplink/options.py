"""From the ``[uplink]`` table to a connection: secrets read from files, a TLS context built.

The config loader does not open files (``check-config`` runs on a workstation
without the Pi's /etc/coldgate), so a missing password or key file is found
here, at start, and reported as a ``ConfigError`` naming the key, instead of
as an endless series of failed connections.
"""

from __future__ import annotations

from coldgate.gateway.config import UplinkConfig
from coldgate.gateway.uplink.mqtt_link import LinkOptions
from coldgate.mqtt_secrets import read_secret, tls_context


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
