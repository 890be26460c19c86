"""Loading the gateway's configuration: read, convert, complete, check.

``load_gateway_config(path)`` is the only way in; it rejects a bad file at start-up
with a message naming the key (``gateway.toml: sensors[2].unit: expected an
integer 1..247, got "three"``) instead of failing at 3 a.m. on the first poll.
The same checks run on configuration pushed down from the cloud
(``gateway_config_from_document``).  Apart from the tables (``gateway.config``)
so that the cross-table checks (``gateway.config_checks``) can use the tables'
types while the loader uses the checks, with no module importing back.
"""

from __future__ import annotations

import os
import posixpath
from typing import Any

from msgspec import structs

from coldgate.configfile import convert_document, read_toml
from coldgate.gateway.config import GatewayConfig
from coldgate.gateway.config_checks import validate_gateway_config

__all__ = ["complete_gateway_config", "gateway_config_from_document", "load_gateway_config"]


def complete_gateway_config(config: GatewayConfig) -> GatewayConfig:
    """Fill in the defaults that depend on other keys, so users of the config never see None."""
    uplink = config.uplink
    if uplink.client_id is None:
        uplink = structs.replace(uplink, client_id=config.gateway.id)
    outbox = config.outbox
    if outbox.path is None:
        outbox = structs.replace(outbox, path=posixpath.join(config.gateway.data_dir, "outbox.sqlite3"))
    zones = tuple(
        zone
        if zone.recording_interval_s is not None
        else structs.replace(zone, recording_interval_s=300.0 if zone.transport else 1800.0)
        for zone in config.zones
    )
    return structs.replace(config, uplink=uplink, outbox=outbox, zones=zones)


def gateway_config_from_document(doc: Any, source_name: str) -> GatewayConfig:
    """Load a parsed document (TOML, or JSON pushed from the cloud) with every check."""
    return convert_document(
        doc,
        GatewayConfig,
        source_name,
        complete=complete_gateway_config,
        validate=validate_gateway_config,
    )


def load_gateway_config(path: str | os.PathLike[str]) -> GatewayConfig:
    """Read and check a gateway.toml; raises ConfigError naming the file and key."""
    return gateway_config_from_document(read_toml(path), os.fspath(path))
