"""``coldgate gateway``: commands that run on the Pi."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

DEFAULT_CONFIG = "/etc/coldgate/gateway.toml"


@click.group()
def gateway() -> None:
    """Run and inspect the edge gateway."""


@gateway.command("check-config")
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--offline",
    is_flag=True,
    help="Check the file alone (on a workstation without the Pi's secrets): open none of the files it names.",
)
def check_config(path: str, offline: bool) -> None:
    """Load a gateway TOML file and report its first mistake; then read the uplink's password and TLS
    files as the uplink will, one line per mistake.  Prints a summary when all is well."""
    from coldgate.configfile import ConfigError
    from coldgate.gateway.config_checks import check_uplink_files, uplink_files
    from coldgate.gateway.config_load import load_gateway_config

    try:
        config = load_gateway_config(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    summary = (
        f"{path}: ok: gateway {config.gateway.id} at site {config.gateway.site}, "
        f"{len(config.sensors)} sensor(s)"
    )
    if offline:
        click.echo(f"{summary}; the uplink's files not checked (--offline)")
        return
    problems = check_uplink_files(config.uplink)
    for problem in problems:
        click.echo(f"Error: {problem.in_file(path)}", err=True)
    if problems:
        raise click.exceptions.Exit(1)
    click.echo(f"{summary}; files read: {', '.join(uplink_files(config.uplink)) or 'none named'}")


@gateway.command("run")
@click.argument("path", type=click.Path(dir_okay=False, path_type=str), default=DEFAULT_CONFIG)
@click.option("--log-level", default="INFO", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
def run(path: str, log_level: str) -> None:
    """Run the gateway: poll, judge, alarm, buffer and publish until SIGTERM or Ctrl-C."""
    import asyncio
    import logging
    import signal

    from coldgate.configfile import ConfigError
    from coldgate.gateway.buffer.dbfile import OutboxFileError
    from coldgate.gateway.config_load import load_gateway_config
    from coldgate.gateway.service import GatewayService

    try:
        config = load_gateway_config(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await GatewayService(config).run(stop)

    try:
        asyncio.run(main())
    except OutboxFileError as exc:
        # Another gateway holds the outbox, or the file is corrupt or unreadable: the message names the
        # file and what to do, so an operator (or systemd's journal) needs that line, not a traceback.
        raise click.ClickException(str(exc)) from None


@gateway.command("status")
@click.argument("path", type=click.Path(dir_okay=False, path_type=str), default=DEFAULT_CONFIG)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def status(path: str, as_json: bool) -> None:
    """Outbox depth, oldest unacknowledged item, alarm and sensors, from local state only."""
    from coldgate.configfile import ConfigError
    from coldgate.gateway.config_load import load_gateway_config
    from coldgate.gateway.local_status import local_status, render

    try:
        config = load_gateway_config(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    report = local_status(config)
    click.echo(json.dumps(report, indent=2) if as_json else render(report))


def _control_path(config_path: str | None, data_dir: str | None) -> Path:
    from coldgate.configfile import ConfigError
    from coldgate.gateway.config_load import load_gateway_config
    from coldgate.gateway.control import socket_path

    if data_dir is not None:
        return socket_path(data_dir)
    try:
        config = load_gateway_config(config_path or DEFAULT_CONFIG)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    return socket_path(config.gateway.data_dir)


def _ask(path: Path, action: str, by: str = "", reason: str = "") -> dict[str, Any]:
    from coldgate.gateway.control import ControlRequest, ask

    try:
        reply = ask(path, ControlRequest(action=action, by=by, reason=reason))  # type: ignore[arg-type]
    except (ConnectionError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    if not reply.ok:
        raise click.ClickException(reply.error or f"{action} refused")
    return reply.data


_where = [
    click.option("--config", "config_path", default=None, help=f"Gateway TOML (default {DEFAULT_CONFIG})."),
    click.option("--data-dir", default=None, help="The gateway's data directory, instead of --config."),
]


def _with_where(func: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(_where):
        func = option(func)
    return func


@gateway.group()
def alarm() -> None:
    """The local alarm of a running gateway: works with the network down."""


@alarm.command("status")
@_with_where
def alarm_status(config_path: str | None, data_dir: str | None) -> None:
    """Show whether the alarm sounds, which alerts hold it and who muted it."""
    data = _ask(_control_path(config_path, data_dir), "status")
    click.echo(json.dumps(_alarm_view(data), indent=2))


def _alarm_view(data: dict[str, Any]) -> dict[str, Any]:
    """The alarm part of the gateway's status (every field, defaults too), with who muted it."""
    import msgspec

    from coldgate.contract.uplink import Status

    status = msgspec.convert(data["status"], Status)
    alarm = msgspec.structs.asdict(status.alarm) if status.alarm is not None else {"alerts": []}
    return {"gateway": status.gateway, "alarm": {**alarm, **(data.get("detail") or {}).get("alarm", {})}}


@alarm.command("silence")
@_with_where
@click.option("--by", required=True, help="Your name, as recorded in the audit trail.")
@click.option("--reason", default="", help="Why, for the audit trail.")
def alarm_silence(config_path: str | None, data_dir: str | None, by: str, reason: str) -> None:
    """Mute the siren until a new alert is raised (the alerts stay open)."""
    data = _ask(_control_path(config_path, data_dir), "silence", by, reason)
    alerts = _alarm_view(data)["alarm"]["alerts"]
    click.echo(f"silenced by {by}; open alerts: {', '.join(alerts) or 'none'}")


@alarm.command("acknowledge")
@_with_where
@click.option("--by", required=True, help="Your name, as recorded in the audit trail.")
@click.option("--reason", default="", help="Why, for the audit trail.")
def alarm_acknowledge(config_path: str | None, data_dir: str | None, by: str, reason: str) -> None:
    """Take charge of the open alerts (also mutes) until a new alert is raised."""
    data = _ask(_control_path(config_path, data_dir), "acknowledge", by, reason)
    alerts = _alarm_view(data)["alarm"]["alerts"]
    click.echo(f"acknowledged by {by}; open alerts: {', '.join(alerts) or 'none'}")


@gateway.command("udev-rule")
@click.argument("device")
@click.option("--name", required=True, help="The stable name: /dev/coldgate/NAME (e.g. rs485-cold-rooms).")
@click.option(
    "--by",
    type=click.Choice(["auto", "serial", "port"]),
    default="auto",
    show_default=True,
    help="Match the adapter's serial number or the USB port it is in (auto: serial when usable).",
)
def udev_rule(device: str, name: str, by: str) -> None:
    """Print the udev rule giving DEVICE (/dev/ttyUSB0, ttyACM1) a stable name for the config."""
    from coldgate.gateway.udev_rules import RULES_FILE, UdevError, device_facts, rule_for

    try:
        rule = rule_for(device_facts(device), name, by)
    except UdevError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(rule, nl=False)
    click.echo(
        f"# append to {RULES_FILE}, then: sudo udevadm control --reload && sudo udevadm trigger\n"
        f'# and in gateway.toml: port = "/dev/coldgate/{name}"',
        err=True,
    )
