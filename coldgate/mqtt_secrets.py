"""Secrets and TLS for an MQTT connection, shared by the gateway uplink and cloud ingest.

Both read the same ``MqttConnection`` config table; keeping the file reading
and TLS set-up in one place means one set of error messages naming the key.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from coldgate.configfile import ConfigError
from coldgate.configtypes import MqttConnection

__all__ = ["read_secret", "tls_context"]


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


def tls_context(config: MqttConnection, key: str = "uplink") -> ssl.SSLContext:
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
