"""Rules of a gateway config that span several keys or tables.

Types and ranges are checked while the file is converted; what is left here
is what no single key can know: that an id is used twice, that a reference
points nowhere, that limits are reversed, that a sensor polls less often than
its zone must record.  Each rule raises ``ConfigError`` with the key to fix
(the later of two clashing entries, since that is usually the one just added).
Checks run in the order tables usually appear in a file, so the first error
reported is usually the first one in it.

``check_uplink_files`` is apart: it opens the files the uplink reads at start
(the password, the TLS CA, client certificate and key), which the loader must
not do (the file alone is checked on a workstation without the Pi's secrets).
``gateway check-config`` runs it on the Pi, as the service's user in the
installer, so that a missing, unreadable or wrong file stops the install with
its key and reason instead of showing up as failed connections in the journal.
"""

from __future__ import annotations

import getpass
import os
import re
import ssl
import zoneinfo
from collections.abc import Sequence
from pathlib import Path

from coldgate.configdescribe import render_value
from coldgate.configfile import ConfigError
from coldgate.configtypes import check_mqtt_connection
from coldgate.gateway.config import AlarmConfig, GatewayConfig, TemperatureClass, UplinkConfig, Zone
from coldgate.gateway.sensors.config import (
    builtin_profiles,
    check_lines,
    check_profile,
    check_sources,
)


def validate_gateway_config(config: GatewayConfig) -> None:
    """Raise ConfigError for the first cross-key mistake in ``config``."""
    _check_timezone(config.gateway.timezone)
    check_mqtt_connection(config.uplink, "uplink")
    # The shipped broker (deploy/mosquitto) pins a gateway's topics to its login: the username is
    # the gateway id (contract.topics.MOSQUITTO_GATEWAY_ACL) and becomes the client id as well.  A
    # username that is not the gateway id is reported by the uplink, not refused here: a gateway
    # set up against an earlier broker must still start and sound its local alarm.
    if config.uplink.client_id not in (None, config.gateway.id):
        raise ConfigError(
            "uplink.client_id",
            f'must be the gateway id "{config.gateway.id}" (or left out): the broker takes the login\'s '
            "username, the gateway id, as the client id",
        )
    _unique(config.modbus_lines, "id", "modbus_lines")
    check_lines(config.modbus_lines)
    _unique(config.profiles, "name", "profiles")
    for i, profile in enumerate(config.profiles):
        if profile.name in builtin_profiles():
            raise ConfigError(
                f"profiles[{i}].name",
                f'"{profile.name}" is a built-in profile; give yours another name',
            )
        check_profile(profile, f"profiles[{i}]")
    _unique(config.sensors, "id", "sensors")
    check_sources(config.sensors, config.modbus_lines, config.all_profiles())
    _check_sensor_zones(config)
    _unique(config.readers, "id", "readers")
    for i, reader in enumerate(config.readers):
        both = sorted(set(reader.outside_antennas) & set(reader.inside_antennas))
        if both:
            raise ConfigError(
                f"readers[{i}].inside_antennas",
                f"antenna(s) {both} also face outside; a direction needs two distinct sides",
            )
        if reader.zone is not None and reader.zone not in {zone.id for zone in config.zones}:
            raise ConfigError(f"readers[{i}].zone", f'no zone "{reader.zone}" in [[zones]]')
        if reader.stray_max_dwell_ms <= reader.presence_window_ms:
            raise ConfigError(f"readers[{i}].stray_max_dwell_ms", "must be longer than presence_window_ms")
    _unique(config.scanners, "id", "scanners")
    for i, scanner in enumerate(config.scanners):
        if scanner.zone is not None and scanner.zone not in {zone.id for zone in config.zones}:
            raise ConfigError(f"scanners[{i}].zone", f'no zone "{scanner.zone}" in [[zones]]')
    _unique(config.zones, "id", "zones")
    _check_zones(config.zones, config.temperature_classes)
    _unique(config.temperature_classes, "name", "temperature_classes")
    for i, tclass in enumerate(config.temperature_classes):
        check_temperature_class(tclass, f"temperature_classes[{i}]")
    _check_alarm(config.alarm, config)
    _check_offline_alerts(config)


def _unique(items: Sequence[object], attr: str, table: str) -> None:
    seen: dict[object, int] = {}
    for i, item in enumerate(items):
        value = getattr(item, attr)
        first = seen.setdefault(value, i)
        if first != i:
            raise ConfigError(
                f"{table}[{i}].{attr}", f'duplicate {attr} "{value}" (already used by {table}[{first}])'
            )


def _check_timezone(name: str | None) -> None:
    if name is None:
        return
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: "Europe" is a directory of the tz database; a very long name is too long a path.
        raise ConfigError(
            "gateway.timezone",
            expected='an IANA time zone like "Europe/Berlin"',
            found=render_value(name),
        ) from None


def _check_sensor_zones(config: GatewayConfig) -> None:
    zones = {zone.id: zone for zone in config.zones}
    for i, src in enumerate(config.sensors):
        if src.zone is None:
            continue
        zone = zones.get(src.zone)
        if zone is None:
            known = ", ".join(f'"{z}"' for z in zones) or "none"
            raise ConfigError(
                f"sensors[{i}].zone", f'no [[zones]] entry has id "{src.zone}" (known: {known})'
            )
        every = zone.recording_interval_s
        if every is not None and src.interval_s > every:
            kind = "transport" if zone.transport else "storage"
            raise ConfigError(
                f"sensors[{i}].interval_s",
                f'{src.interval_s:g} s is longer than zone "{zone.id}" must record '
                f"({kind}: every {every:g} s)",
            )


def _check_zones(zones: Sequence[Zone], classes: Sequence[TemperatureClass]) -> None:
    names = [c.name for c in classes]
    for i, zone in enumerate(zones):
        if zone.temperature_class not in names:
            known = ", ".join(f'"{n}"' for n in names) or "none"
            raise ConfigError(
                f"zones[{i}].temperature_class",
                f'no [[temperature_classes]] entry is named "{zone.temperature_class}" (known: {known})',
            )


def check_temperature_class(tc: TemperatureClass, at: str) -> None:
    """The class's own rules; public because the cloud's catalog checks a class with it before it
    stores one, so a class the cloud accepts is one every gateway accepts."""
    if tc.high <= tc.low:
        raise ConfigError(
            f"{at}.high",
            expected=f"a temperature above low = {render_value(tc.low)}",
            found=render_value(tc.high),
        )
    half = (tc.high - tc.low) / 2
    if tc.pre_alarm_margin >= half:
        raise ConfigError(
            f"{at}.pre_alarm_margin",
            expected=f"a margin below {half:g} (half of the {tc.low:g}..{tc.high:g} band, "
            "or the pre-alarm bands would cover it)",
            found=render_value(tc.pre_alarm_margin),
        )
    if tc.hysteresis >= half:
        raise ConfigError(
            f"{at}.hysteresis",
            expected=f"a hysteresis below {half:g} (half of the {tc.low:g}..{tc.high:g} band, "
            "or an alarm could never clear)",
            found=render_value(tc.hysteresis),
        )
    if tc.humidity_low is not None and tc.humidity_high is not None and tc.humidity_high <= tc.humidity_low:
        raise ConfigError(
            f"{at}.humidity_high",
            expected=f"a relative humidity above humidity_low = {render_value(tc.humidity_low)}",
            found=render_value(tc.humidity_high),
        )
    if tc.humidity_low is not None and tc.humidity_high is not None:
        half_rh = (tc.humidity_high - tc.humidity_low) / 2
        if tc.humidity_hysteresis >= half_rh:
            raise ConfigError(
                f"{at}.humidity_hysteresis",
                expected=f"a hysteresis below {half_rh:g} (half of the "
                f"{tc.humidity_low:g}..{tc.humidity_high:g} band, or a humidity alarm could never clear)",
                found=render_value(tc.humidity_hysteresis),
            )
    if tc.excursion_budget_s is not None and tc.excursion_budget_s >= tc.excursion_budget_window_s:
        raise ConfigError(
            f"{at}.excursion_budget_s",
            expected=f"less than excursion_budget_window_s = {tc.excursion_budget_window_s:g} s "
            "(a budget as long as its window can never run out)",
            found=render_value(tc.excursion_budget_s),
        )


def _check_alarm(alarm: AlarmConfig, config: GatewayConfig) -> None:
    if alarm.relay is not None:
        line_ids = [line.id for line in config.modbus_lines]
        if alarm.relay.line not in line_ids:
            known = ", ".join(f'"{i}"' for i in line_ids) or "none"
            raise ConfigError(
                "alarm.relay.line",
                f'no [[modbus_lines]] entry has id "{alarm.relay.line}" (known: {known})',
            )
    if alarm.command is not None and not alarm.command[0].startswith("/"):
        raise ConfigError(
            "alarm.command[0]",
            expected="an absolute path (starting with /): it runs without a shell or PATH",
            found=f'"{alarm.command[0]}"',
        )


def _check_offline_alerts(config: GatewayConfig) -> None:
    zone_ids = [zone.id for zone in config.zones]
    seen: dict[str, int] = {}
    for i, entry in enumerate(config.offline_alerts.zones):
        if entry.zone not in zone_ids:
            known = ", ".join(f'"{z}"' for z in zone_ids) or "none"
            raise ConfigError(
                f"offline_alerts.zones[{i}].zone",
                f'no [[zones]] entry has id "{entry.zone}" (known: {known})',
            )
        first = seen.setdefault(entry.zone, i)
        if first != i:
            raise ConfigError(
                f"offline_alerts.zones[{i}].zone",
                f'zone "{entry.zone}" already has its entry (offline_alerts.zones[{first}])',
            )


def check_uplink_files(uplink: UplinkConfig, key: str = "uplink") -> list[ConfigError]:
    """Each mistake in the files the uplink reads at start, one ``ConfigError`` naming its key, file and
    reason; one bad file does not hide another, so an operator fixes them in one go."""
    problems: list[ConfigError] = []
    if uplink.password_file is not None:
        try:
            _check_password(f"{key}.password_file", uplink.password_file)
        except ConfigError as exc:
            problems.append(exc)
    if uplink.address.tls:  # TLS files with plain mqtt:// are refused by the loader already
        problems += _check_tls(uplink, key)
    return problems


def uplink_files(uplink: UplinkConfig, key: str = "uplink") -> list[str]:
    """The keys of the files ``check_uplink_files`` reads, in the order it reads them."""
    names = ["password_file"]
    if uplink.address.tls:
        names += ["ca_file", "cert_file", "key_file"]
    return [f"{key}.{name}" for name in names if getattr(uplink, name) is not None]


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        return f"uid {os.getuid()}"


def _read(key: str, path: str) -> bytes:
    """The file's bytes, or a ConfigError saying precisely why not; an empty file is a mistake for each
    file the uplink reads."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(key, f"{path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(key, f"{path} is a folder, not a file") from None
    except PermissionError:
        raise ConfigError(key, f"{path} cannot be read by {_user()} (permission denied)") from None
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path}: {exc.strerror or exc}") from None
    if not data:
        raise ConfigError(key, f"{path} is empty")
    return data


def _check_password(key: str, path: str) -> None:
    """As ``mqtt_secrets.read_secret`` reads it for the uplink: UTF-8, the first line is the password."""
    try:
        text = _read(key, path).decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(key, f"{path} is not UTF-8 text") from None
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise ConfigError(key, f"{path} holds no password (only blank lines)")
    if not lines[0].strip():
        raise ConfigError(
            key, f"{path} starts with a blank line; the uplink sends the first line as the password"
        )


def _check_tls(uplink: UplinkConfig, key: str) -> list[ConfigError]:
    """Each named file readable (every one that is not is reported), then each loaded on its own so that
    a failure names the file at fault, then all together by ``mqtt_secrets.tls_context``, as the uplink
    loads them."""
    from coldgate.mqtt_secrets import tls_context

    named = {name: getattr(uplink, name) for name in ("ca_file", "cert_file", "key_file")}
    problems: list[ConfigError] = []
    contents: dict[str, bytes] = {}
    for name, path in named.items():
        if path is None:
            continue
        try:
            contents[name] = _read(f"{key}.{name}", path)
        except ConfigError as exc:
            problems.append(exc)
    if problems:
        return problems
    ca, cert, private = named["ca_file"], named["cert_file"], named["key_file"]
    if ca is not None and (reason := _certificates_fail(ca)):
        problems.append(ConfigError(f"{key}.ca_file", f"{ca} holds no CA certificate ssl loads ({reason})"))
    if cert is not None and (reason := _certificates_fail(cert)):
        problems.append(ConfigError(f"{key}.cert_file", f"{cert} holds no certificate ssl loads ({reason})"))
    if private is not None and b"ENCRYPTED" in contents["key_file"]:
        # Loaded without a passphrase, an encrypted key would make OpenSSL ask for one on the terminal.
        problems.append(
            ConfigError(
                f"{key}.key_file",
                f"{private} is an encrypted private key; the uplink loads it without a passphrase, so it "
                "must be stored unencrypted (readable by the gateway's user only)",
            )
        )
    if problems:
        return problems
    if cert is not None and private is not None:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert, private)
        except ssl.SSLError as exc:
            if "KEY_VALUES_MISMATCH" in str(exc):
                why = f"is not the private key of the certificate in {cert}"
            else:
                why = f"holds no private key ssl loads ({_ssl_reason(exc)})"
            return [ConfigError(f"{key}.key_file", f"{private} {why}")]
        except OSError as exc:
            return [ConfigError(f"{key}.key_file", f"cannot load {private}: {exc.strerror or exc}")]
    try:
        tls_context(uplink, key)
    except ConfigError as exc:
        problems.append(exc)
    return problems


def _certificates_fail(path: str) -> str | None:
    """Why ssl cannot load PEM certificates from ``path``, or None when it can."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except ssl.SSLError as exc:
        return _ssl_reason(exc)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _ssl_reason(exc: ssl.SSLError) -> str:
    """OpenSSL's reason without the ``[SSL]`` and ``(_ssl.c:NNNN)`` of CPython's source, which tell an
    operator nothing."""
    if exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    text = re.sub(r"^\[\w+\]\s*|\s*\(_ssl\.c:\d+\)$", "", exc.strerror or str(exc))
    return text or "not a PEM file ssl reads"
