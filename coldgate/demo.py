"""``coldgate demo``: a whole Coldgate on one machine, on embedded defaults, end to end.

- The site is the simulator: ten temperature/humidity loggers, half on Modbus
  TCP and half on an RS-485 line (RTU over a pseudo-terminal), one in a
  compressor failure, one with door openings, one that drops out; and a relay
  board driving the cold room's siren.
- The gateways are the real ones (``GatewayService``, as ``coldgate gateway run``
  wires it), one Pi per place as at a real site: the cold rooms' (line pollers,
  cold-chain rules, the siren) and the dock door's (``demo_dock``: the LLRP portal,
  a picking scanner, the stack light), each with its durable outbox and the MQTT
  uplink with end-to-end acknowledgement.
- The broker is amqtt, embedded (``--broker`` uses another).  amqtt speaks
  MQTT 3.1.1 only and gives no CONNACK to an MQTT 5 CONNECT with a will, so
  both sides are told to use 3.1.1 (shared/LIBRARY-NOTES.md).
- The cloud is the real one (``CloudService``, as ``coldgate cloud run``):
  ingest into SQLite, the unheard-gateway watchdog, and the REST API on
  http://127.0.0.1:8000.  One person per role is made with a fresh password
  (printed), and the QA manager's API token is printed for ``curl``.
- QA cases: the cloud opens one for the excursion, quarantines what the room held, and e-mails QA, the
  QA manager and the dock at once (the admin too after two minutes unacknowledged) through the demo's
  own mailbox (``demo_mailbox``: a local SMTP server; ``MAIL`` lines, ``.eml`` files in the folder).
- The dock (``demo_dock``): door DOCK-1 guarded by the simulator's LLRP reader, read by the gateway's
  real LLRP source; the dock operator's receiving note, a pallet of 24 serialised cases through the
  portal, bound and reconciled by the cloud, and the receipt completed (``DOCK`` lines); a dispatch
  whose recalled case lights the stack light (``demo_dispatch``, ``DISPATCH`` lines).
- What to open and as whom (``TOUR`` lines), and with ``--story`` the narrator's chapters
  (``demo_story``).

Alerts are printed as the *cloud* stores them, so what you see has made the
whole trip.  Scenario time runs ``--speed`` times faster than real time; the
rules judge real time, so the demo shortens the alarm delay by the same factor
(a 30-minute delay at x60 is 30 s) and a compressor failure alarms within a
minute or two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from coldgate.demo_approval import approve_class_change
from coldgate.demo_dispatch import DemoDispatch
from coldgate.demo_dock import DOCK_GATEWAY, DOOR, LOT, PRODUCT, DemoDock, dock_gateway_config
from coldgate.demo_mailbox import DemoMailbox
from coldgate.demo_people import DEMO_PEOPLE, actor, hhmm
from coldgate.demo_story import Narrator, print_tour, tour
from coldgate.gateway.config import GatewayConfig
from coldgate.gateway.config_load import gateway_config_from_document
from coldgate.gateway.service import GatewayService
from coldgate.simulator.background import FarmThread
from coldgate.simulator.config import FarmConfig, default_farm
from coldgate.simulator.llrp import LlrpReader, LlrpReaderThread
from coldgate.simulator.relay import RelayBoard
from coldgate.simulator.scanner import ScannerEmulator

ALARM_DELAY_SCENARIO_S = 1800.0  # 30 min, a common cold-room alarm delay
GATEWAY, SITE = "demo-gw-01", "demo-site"


def demo_config(
    data_dir: Path,
    farm: FarmConfig,
    tcp_port: int,
    rtu_device: str,
    relay_port: int,
    speed: float,
    broker_url: str = "mqtt://127.0.0.1:1883",
    protocol: str = "5",
) -> GatewayConfig:
    """The gateway.toml a site engineer would write for the cold rooms' Pi (the dock door has its own,
    ``demo_dock.dock_gateway_config``)."""
    split = len(farm.loggers) // 2
    sensors = [
        {
            "source": "modbus",
            "id": f"cr-{spec.unit:02d}",
            "line": "dock-tcp" if index < split else "cold-bus",
            "unit": spec.unit,
            "profile": spec.register_map,  # the simulator's maps ship as built-in profiles
            "interval_s": 1,
            "timeout_s": 0.3,
            "retries": 1,
            "zone": room_of(index, len(farm.loggers)),
        }
        for index, spec in enumerate(farm.loggers)
    ]
    document: dict[str, Any] = {
        "gateway": {"id": GATEWAY, "site": SITE, "data_dir": str(data_dir)},
        "modbus_lines": [
            {"id": "dock-tcp", "transport": "tcp", "host": "127.0.0.1", "port": tcp_port, "timeout_s": 0.3},
            {"id": "cold-bus", "transport": "rtu", "port": rtu_device, "baudrate": 19200, "timeout_s": 0.3},
            {"id": "siren", "transport": "tcp", "host": "127.0.0.1", "port": relay_port, "timeout_s": 0.5},
        ],
        "temperature_classes": [
            {
                "name": "2-8C",
                "low": 2.0,
                "high": 8.0,
                "alarm_delay_s": max(1.0, ALARM_DELAY_SCENARIO_S / speed),
                "hysteresis": 0.3,
            }
        ],
        "zones": [
            {
                "id": room,
                "temperature_class": DEMO_ROOMS[room][2],
                "description": DEMO_ROOMS[room][0],
                "recording_interval_s": 60,
            }
            for room in COLD_ROOMS
        ],
        "sensors": sensors,
        "alarm": {"min_severity": "critical", "relay": {"line": "siren", "unit": 1, "coil": 0}},
        "uplink": {"broker": broker_url, "protocol": protocol, "heartbeat_s": 10, "ack_timeout_s": 10},
    }
    return gateway_config_from_document(document, "demo")


async def _start_broker(port: int) -> Any:
    """amqtt on 127.0.0.1:``port``; None if it cannot listen there."""
    from amqtt.broker import Broker

    for name in ("amqtt", "transitions"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    settings = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = Broker(settings)
    await broker.start()
    return broker


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CloudWatch:
    """Reads what the cloud has stored, for the screen: new alert steps, gaps and QA cases, open
    alerts."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.seen: set[tuple[str, str, int, str]] = set()

    def poll(self) -> tuple[list[str], int]:
        from sqlalchemy import select

        from coldgate.cloud.db.models import Alert as AlertRow
        from coldgate.cloud.db.models import Gap as GapRow
        from coldgate.cloud.db.models import QaCase, QaCaseStock

        lines: list[str] = []
        latest: dict[tuple[str, str], str] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(select(AlertRow).order_by(AlertRow.ts, AlertRow.seq)):
                latest[(row.gateway, row.alert_id)] = row.action
                key = (row.gateway, row.stream, row.seq, "alert")
                if key not in self.seen:
                    self.seen.add(key)
                    lines.append(f"  ALERT {row.action:8s} {row.severity:8s} {row.rule}: {row.message}")
            for row in conn.execute(select(GapRow).order_by(GapRow.ts, GapRow.seq)):
                key = (row.gateway, row.stream, row.seq, "gap")
                if key not in self.seen:
                    self.seen.add(key)
                    state = "monitoring interrupted" if row.end is None else "monitoring resumed"
                    lines.append(f"  GAP   {state}: {row.subject} ({row.cause}) {row.detail}")
            for case in conn.execute(select(QaCase).order_by(QaCase.opened_at, QaCase.id)):
                key = (case.gateway, case.id, 0, "case")
                if key not in self.seen:
                    self.seen.add(key)
                    lines.append(f"  CASE  opened {case.id} for QA: {case.rule} {case.subject}: {case.title}")
                    held = conn.execute(
                        select(QaCaseStock.product, QaCaseStock.lot)
                        .where(QaCaseStock.case_id == case.id, QaCaseStock.status_before == "released")
                        .distinct()
                    ).all()
                    if held:
                        lots = ", ".join(f"{p}/{lot}" for p, lot in held)
                        lines.append(f"  CASE  {case.id} quarantined what the room held: {lots}")
        return lines, sum(1 for action in latest.values() if action != "cleared")


def _cloud_config(
    data_dir: Path, broker: str, protocol: str, api_port: int, smtp_port: int | None = None
) -> Any:
    """The cloud.toml an operator would write for this site; with ``smtp_port``, QA case notifications
    to the demo's mailbox: a critical case tells QA, the QA manager and the dock at once (three people,
    as GSP asks), and the admin too if nobody has acknowledged it after two minutes."""
    from coldgate.cloud.config import cloud_config_from_document

    document: dict[str, Any] = {
        "database": {"url": f"sqlite:///{data_dir / 'cloud.sqlite3'}"},
        "mqtt": {"broker": broker, "protocol": protocol, "workers": 1, "client_id": "demo-cloud"},
        "api": {"host": "127.0.0.1", "port": api_port},
        "gateways": {"heartbeat_timeout_s": 30},
    }
    if smtp_port is not None:
        levels = [{"after_min": 0, "roles": ["qa", "qa_manager", "dock_operator"]},
                  {"after_min": 2, "roles": ["qa_manager", "admin"]}]  # fmt: skip
        document["notify"] = {
            "smtp_host": "127.0.0.1", "smtp_port": smtp_port, "smtp_security": "none",
            "mail_from": "coldgate@demo.invalid", "base_url": f"http://127.0.0.1:{api_port}",
            "policy": {"critical": {"channels": ["email"], "reminder_every_min": 0, "levels": levels}},
        }  # fmt: skip
    return cloud_config_from_document(document, "demo")


async def run_demo(
    count: int,
    speed: float,
    interval: float,
    duration: float | None,
    data_dir: Path,
    broker_url: str | None,
    api_port: int,
    story: bool = False,
) -> None:
    from coldgate.cloud.service import CloudService

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    broker = None
    protocol = "5"
    if broker_url is None:
        port = _free_port()
        broker = await _start_broker(port)
        broker_url, protocol = f"mqtt://127.0.0.1:{port}", "3.1.1"
    mailbox = DemoMailbox(data_dir / "mailbox").start()
    config = _cloud_config(data_dir, broker_url, protocol, api_port, mailbox.port)
    cloud = CloudService(config, watchdog_interval_s=5.0)
    try:
        await asyncio.to_thread(cloud.start)
    except OSError as exc:
        mailbox.stop()
        if broker is not None:
            await broker.shutdown()
        raise click.ClickException(f"{exc}; choose another with --api-port") from exc
    try:
        token, qa_password, quentin = await asyncio.to_thread(_demo_people, cloud)
        click.echo(f"Dashboard: {cloud.api_url}/  (sign in as marta, password {qa_password})")
        click.echo(f"Mailbox: QA's e-mail lands in {mailbox.folder} (MAIL lines below)")
        await _run_site(count, speed, interval, duration, data_dir, broker_url, protocol, cloud, token, stop,
                        mailbox, quentin, story)  # fmt: skip
    finally:
        await asyncio.to_thread(cloud.stop)
        mailbox.stop()
        if broker is not None:
            await broker.shutdown()
    click.echo("stopped")


def _demo_people(cloud: Any) -> tuple[str, str, tuple[str, str]]:
    """One person per role, each with a fresh password printed here, as ``coldgate cloud users add``
    would make them; the QA manager's API token (for the printed ``curl``) and password (for the
    dashboard) are returned, and QA's token and password (he signs an approval of her master data)."""
    import datetime

    from coldgate.cloud.audit.log import Actor
    from coldgate.cloud.identity.tokens import create_user_token
    from coldgate.cloud.identity.users import add_user

    now = datetime.datetime.now(datetime.UTC)
    by = Actor("coldgate demo")
    token = qa_password = ""
    quentin = ("", "")
    click.echo("People (sign in at POST /auth/login; every change they make is audited):")
    with cloud.writer_engine.begin() as conn:
        for role, (login, name) in DEMO_PEOPLE.items():
            password = secrets.token_urlsafe(12)
            user_id = add_user(
                conn, login=login, printed_name=name, email=f"{login}@demo.invalid", password=password,
                roles=[role], by=by, now=now,
            )  # fmt: skip
            click.echo(f"  {role:<19} login {login:<8} password {password}")
            if role == "qa_manager":
                token = create_user_token(conn, user_id, label="demo", days=1, by=by, now=now).token
                qa_password = password
            if role == "qa":
                issued = create_user_token(conn, user_id, label="demo", days=1, by=by, now=now)
                quentin = (issued.token, password)
    return token, qa_password, quentin


def _enrol(cloud: Any, gateway: str, site: str) -> None:
    """The cloud takes data only from enrolled gateways; an operator enrols one with
    ``coldgate cloud gateways enroll`` (here the embedded broker has no logins to make)."""
    import datetime

    from coldgate.cloud.identity.enrolment import enrol_gateway

    with cloud.writer_engine.begin() as conn:
        enrol_gateway(conn, gateway, site, "password", datetime.datetime.now(datetime.UTC))
    click.echo(f"Enrolled {gateway} for site {site} (coldgate cloud gateways enroll {gateway} --site {site})")


def _set_time_zone(cloud: Any, site: str) -> None:
    """The site's times in its zone, decided by the demo's admin (coldgate cloud sites time-zone)."""
    import datetime

    from coldgate.cloud.audit.log import Actor
    from coldgate.cloud.catalog.sites import set_time_zone
    from coldgate.cloud.identity.users import find_user

    with cloud.writer_engine.begin() as conn:
        admin = find_user(conn, DEMO_PEOPLE["admin"][0])
        now = datetime.datetime.now(datetime.UTC)
        set_time_zone(conn, site, "Europe/Berlin", by=Actor(admin["printed_name"], admin["id"]), now=now)
    click.echo(
        f"Site {site} shows its times in Europe/Berlin (coldgate cloud sites time-zone CONFIG {site} "
        "ZONE --by ada)"
    )


#: The demo's master data: temperature classes, products (GS1, HIBC, and MA as the demo scanner's MA code),
#: lots; one recalled, one held.
DEMO_CLASSES = {
    "2-8C": ({"low": 2, "high": 8, "pre_alarm_margin": 0.5, "alarm_delay_s": 900}, "Refrigerated, 2-8 °C"),
    "15-25C": ({"low": 15, "high": 25, "pre_alarm_margin": 1.0, "alarm_delay_s": 1800}, "Room temperature"),
}
DEMO_PRODUCTS = {
    "VAX-10": {"name": "Vaccine X 10 x 0.5 ml", "gtin": "04006381333931", "temperature_class": "2-8C",
               "serialised": True},
    "INS-3": {"name": "Insulin pen 3 ml", "gtin": "80614141123458", "temperature_class": "2-8C"},
    "INF-SET": {"name": "Infusion set", "gtin": "09506000134352", "temperature_class": "15-25C"},
    "CATH-12": {"name": "Catheter 12 Fr", "hibc_lic": "A123", "hibc_pcn": "CATH12", "hibc_uom": 1,
                "temperature_class": "15-25C"},
    "STENT-3": {"name": "Coronary stent 3 mm", "ma_id": "MA.156.M0.100001.1A2B3C",
                "temperature_class": "15-25C"},
}  # fmt: skip
DEMO_LOTS = (("VAX-10", "L2026-10", "2027-10-31"), ("INS-3", "L2026-08", "2027-08-31"),
             ("INF-SET", "L2026-07", "2029-07-31"), ("CATH-12", "H26-114", "2030-01-31"),
             ("STENT-3", "2405A1", "2027-05-31"), ("INS-3", "L2026-11", "2027-11-30"))  # fmt: skip
DEMO_RECALL = ("INS-3", "L2026-08", "FSN-2026-12: cartridge leak reported by the manufacturer")
DEMO_QUARANTINE = ("INF-SET", "L2026-07", "held after a temperature excursion in transit (QA case 17)")


#: The demo site's rooms: id -> (name, kind, class); the loggers are placed in them in turn.
DEMO_ROOMS = {
    "CR-A": ("Cold room A (vaccines)", "cold_room", "2-8C"),
    "CR-B": ("Cold room B (insulin)", "cold_room", "2-8C"),
    "AMB-1": ("Ambient store 1", "ambient_store", "15-25C"),
}
#: The rooms the simulated loggers watch (the simulated site is refrigerated): the gateway's zones and the
#: cloud's placements name the same rooms, so the topology page shows them agreeing.
COLD_ROOMS = ("CR-A", "CR-B")


def room_of(index: int, count: int) -> str:
    """The room of the ``index``-th of ``count`` loggers: the first half in CR-A, the rest in CR-B."""
    return COLD_ROOMS[index * len(COLD_ROOMS) // max(1, count)]


def _demo_catalog(
    cloud: Any, gateway: str, site: str, sensors: list[str], speed: float = 1.0, dock: DemoDock | None = None
) -> None:
    """The master data a QA manager enters (classes, products, lots), one lot recalled by the recall
    coordinator and one quarantined by QA, each through the catalog's audited writes as the API makes
    them; the cloud then publishes master data and the recall list to the gateway.

    The classes' alarm rules reach the gateway with the master data and replace its own, so their
    delays are in scenario time, as ``demo_config``'s: at ``--speed 600`` a 15-minute delay is 1.5 s,
    not a quarter of an hour of the demo's real time.  ``dock``: its door, reader and serials too."""
    import datetime

    from coldgate.cloud.catalog.locations import put_location
    from coldgate.cloud.catalog.lots import move_lot, put_lot
    from coldgate.cloud.catalog.placements import place
    from coldgate.cloud.catalog.products import put_product
    from coldgate.cloud.catalog.temperature_classes import put_class
    from coldgate.cloud.identity.roles import permissions
    from coldgate.cloud.reports.recall_store import open_recall

    now = datetime.datetime.now(datetime.UTC)
    with cloud.writer_engine.begin() as conn:
        marta = actor(conn, "qa_manager")
        for name, (spec, description) in DEMO_CLASSES.items():
            scaled = {**spec, "alarm_delay_s": max(1.0, spec["alarm_delay_s"] / speed)}
            put_class(conn, name, scaled, description=description, reason="SOP-12 storage conditions",
                      by=marta, now=now)  # fmt: skip
        for product_id, fields in DEMO_PRODUCTS.items():
            put_product(conn, product_id, fields, reason="product master", by=marta, now=now)
        for product_id, lot, expiry in DEMO_LOTS:
            put_lot(conn, product_id, lot, {"expiry": expiry}, reason="received", by=marta, now=now)
        # Rico's recall run of the insulin lot (issue 17): the recalls page lists it, and the lot is recalled.
        rico = actor(conn, "recall_coordinator")
        open_recall(conn, recall_class="II", reason=DEMO_RECALL[2], lots=[DEMO_RECALL[:2]], by=rico,
                    held=permissions({"recall_coordinator"}), now=now)  # fmt: skip
        move_lot(
            conn,
            *DEMO_QUARANTINE[:2],
            "quarantined",
            reason=DEMO_QUARANTINE[2],
            by=actor(conn, "qa"),
            now=now,
        )
        for room, (name, kind, klass) in DEMO_ROOMS.items():
            fields = {"name": name, "kind": kind, "temperature_class": klass}
            put_location(conn, site, room, fields, reason="site survey", by=marta, now=now)
        since = int(now.timestamp() * 1000) - 86_400_000
        for n, sensor in enumerate(sensors):
            room = room_of(n, len(sensors))
            place(conn, gateway, "sensor", sensor, room, since, reason="installed", by=marta, now=now)
        if dock is not None:
            dock.catalog(conn, now)
    if cloud.downlink is not None:
        cloud.downlink.nudge()
    click.echo(
        f"Catalog: {len(DEMO_CLASSES)} temperature classes, {len(DEMO_PRODUCTS)} products, {len(DEMO_LOTS)} "
        f"lots; {DEMO_RECALL[0]} lot {DEMO_RECALL[1]} recalled by rico ({DEMO_RECALL[2].split(':')[0]}), "
        f"{DEMO_QUARANTINE[0]} lot {DEMO_QUARANTINE[1]} quarantined by quentin; "
        f"{len(sensors)} loggers placed in {', '.join(name for name, _, _ in DEMO_ROOMS.values())}"
    )


async def _run_site(
    count: int,
    speed: float,
    interval: float,
    duration: float | None,
    data_dir: Path,
    broker_url: str,
    protocol: str,
    cloud: Any,
    token: str,
    stop: asyncio.Event,
    mailbox: DemoMailbox | None = None,
    approver: tuple[str, str] | None = None,
    story: bool = False,
) -> None:
    farm_config = default_farm(count, speed=speed)
    siren, stack_light = RelayBoard(unit=1), RelayBoard(unit=1)
    try:
        siren_port, stack_port = await siren.serve_tcp(), await stack_light.serve_tcp()
        with (
            FarmThread(farm_config, tcp=[("127.0.0.1", 0)], rtu=1) as farm,
            ScannerEmulator() as scanner,
        ):
            dispatch = DemoDispatch(cloud, SITE, DOOR, scanner)
            dock = DemoDock(cloud, DOCK_GATEWAY, SITE, dispatch, lit=lambda: stack_light.coil(0))
            with LlrpReaderThread(LlrpReader(dock.pallet, port=0)) as reader:
                config = demo_config(
                    data_dir,
                    farm_config,
                    farm.tcp[0].port,
                    farm.rtu[0].device,
                    siren_port,
                    speed,
                    broker_url,
                    protocol,
                )
                classes = [{"name": c.name, "low": c.low, "high": c.high} for c in config.temperature_classes]
                dock_config = dock_gateway_config(data_dir / "dock", SITE, broker_url, protocol, reader.port,
                                                  scanner.device, stack_port, classes)  # fmt: skip
                for gateway in (config.gateway.id, DOCK_GATEWAY):
                    _enrol(cloud, gateway, SITE)
                _set_time_zone(cloud, SITE)
                loggers = [f"cr-{spec.unit:02d}" for spec in farm_config.loggers]
                _demo_catalog(cloud, config.gateway.id, SITE, loggers, speed, dock)
                if approver is not None:  # QA signs his approval of the QA manager's change to the cold class
                    login = DEMO_PEOPLE["qa"][0]
                    await asyncio.to_thread(approve_class_change, cloud.api_url, login, *approver, "2-8C")
                await asyncio.to_thread(dock.receiving_note)
                services = [GatewayService(config), GatewayService(dock_config)]
                _announce(cloud, config, farm, farm_config, broker_url, protocol, token, data_dir)
                dock.announce(reader.port, scanner.device)
                stops = tour(cloud.api_url, SITE, DOOR, dock.document, dispatch.document, (PRODUCT, LOT))
                print_tour(stops, str(mailbox.folder) if mailbox is not None else "(no mailbox)")
                click.echo("")
                await _live(
                    services, farm, siren, stack_light, dock, cloud, stop, mailbox, interval, duration, story
                )
    finally:  # each board, whichever started and whatever the other's stop raises
        try:
            await siren.stop()
        finally:
            await stack_light.stop()


def _announce(
    cloud: Any, config: GatewayConfig, farm: Any, farm_config: FarmConfig, broker_url: str, protocol: str,
    token: str, data_dir: Path,
) -> None:  # fmt: skip
    """Where everything is: the broker, the loggers, the gateways' outboxes, the cloud, the API."""
    click.echo(f"Broker: {broker_url} (MQTT {protocol}{', embedded amqtt' if protocol == '3.1.1' else ''})")
    click.echo(f"Loggers: Modbus TCP 127.0.0.1:{farm.tcp[0].port}, RTU on {farm.rtu[0].device}")
    for spec in farm_config.loggers:
        click.echo(f"  cr-{spec.unit:02d}: {spec.describe()}")
    click.echo(f"Gateway {config.gateway.id} (cold rooms, siren): outbox {config.outbox.path}")
    click.echo(
        f"Gateway {DOCK_GATEWAY} (dock door, stack light): outbox {data_dir / 'dock' / 'outbox.sqlite3'}"
    )
    click.echo(f"Cloud: SQLite {data_dir / 'cloud.sqlite3'}")
    click.echo(f"API: {cloud.api_url}/docs  (token: {token})")
    for path in (
        "/alerts",
        "/cases",
        "'/audit?limit=5'",
        "'/catalog/lots?status=recalled'",
        f"/gateways/{config.gateway.id}/downlink",
        f"/gateways/{DOCK_GATEWAY}/topology",
    ):
        quote = "'" if path.startswith("'") else ""
        click.echo(
            f"  curl -H 'Authorization: Bearer {token}' {quote}{cloud.api_url}{path.strip(chr(39))}{quote}"
        )
    click.echo("  (the token is marta's, the QA manager's: POST /auth/tokens makes your own)")
    command = f"{sys.executable} -m coldgate"  # works whether or not .venv/bin is on PATH
    click.echo(f"Silence the siren: {command} gateway alarm silence --data-dir {data_dir} --by YOUR-NAME")


async def _live(
    services: list[GatewayService], farm: Any, siren: RelayBoard, stack_light: RelayBoard, dock: DemoDock,
    cloud: Any, stop: asyncio.Event, mailbox: DemoMailbox | None, interval: float, duration: float | None,
    story: bool,
) -> None:  # fmt: skip
    """Both gateways run; the screen shows what the cloud stored, the mail, and a status line (every
    ``interval``; with ``story``, every 15 s, so the chapters read)."""
    cold, door = services
    scenario_now = farm.farm.clock.now
    narrator = Narrator(story, scenario_now)
    loggers = len(cold.config.sensors)
    narrator.tell(
        f"A small GDP site. Cold rooms A and B hold vaccines and insulin; {loggers} loggers report to the "
        f"cold rooms' Pi ({cold.config.gateway.id}), which judges every reading itself and drives the siren. "
        f"Dock door DOCK-1 has a Pi of its own ({DOCK_GATEWAY}): an RFID portal, a picking scanner and a "
        "stack light. "
        "Both buffer everything and send it over MQTT to the cloud, which binds it to documents and "
        "opens QA cases. Insulin lot L2026-08 is recalled (FSN-2026-12) before the day begins."
    )
    watch = CloudWatch(cloud.reader_engine)
    tasks = [asyncio.create_task(service.run(stop)) for service in services]
    docking = asyncio.create_task(_dock(dock, scenario_now, lambda: door.master is not None, stop, interval,
                                        narrator.tell))  # fmt: skip
    started = time.monotonic()
    every = 15.0 if story else interval
    shown = time.monotonic() - every
    try:
        while not stop.is_set() and not any(task.done() for task in tasks):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(interval, 1.0) if story else interval)
            lines, open_alerts = await asyncio.to_thread(watch.poll)
            for line in [*lines, *(mailbox.take() if mailbox is not None else [])]:
                click.echo(line)
                excursion = _EXCURSION_LINE.search(line)
                if excursion is not None:
                    narrator.tell(_EXCURSION.format(sensor=excursion.group(1)), key="excursion")
            if story and dock.done and narrator.over():
                narrator.tell(_the_end(dock), key="end")
            if time.monotonic() - shown >= every:
                shown = time.monotonic()
                click.echo(_status(farm, cold, door, siren, stack_light, cloud, open_alerts))
            if duration is not None and time.monotonic() - started >= duration:
                stop.set()
    finally:
        stop.set()
        await docking
        # Both gateways end (close their outboxes) before the site's parts go, even if one of them failed.
        failed = [
            r for r in await asyncio.gather(*tasks, return_exceptions=True) if isinstance(r, BaseException)
        ]
        if failed:
            raise failed[0]


#: CloudWatch's line for a raised excursion alert (``ALERT raised   critical temperature.high: cr-03 ...``).
_EXCURSION_LINE = re.compile(r"ALERT raised +critical temperature\.high: (\S+) ")
_EXCURSION = (
    "{sensor} is above its limit for longer than the alarm delay (the simulator fails cr-03's compressor). "
    "The cold rooms' Pi judged the excursion itself and the siren sounds, internet or not; the cloud opened "
    "a QA case, quarantined what the room held and e-mailed QA, the QA manager and the dock (the mailbox). "
    "QA reviews the readings and signs a decision on the case (TOUR 2)."
)


def _the_end(dock: DemoDock) -> str:
    """The closing chapter, saying what the story showed this time (a refusal is told as one)."""
    receipt = "a receipt proven complete" if dock.outcome == "completed" else "a receipt the cloud held open"
    door = dock.dispatch is not None and dock.dispatch.refused
    stopped = (
        "a recalled case stopped at the door" if door else "a dispatch whose stack light did not come on"
    )
    return (
        f"That is the story: {receipt}, an excursion turned into a QA case, {stopped}, and a lot's history "
        "and recall run ready for an inspector. The site runs on; open the tour's pages, and Ctrl-C stops it."
    )


def _status(
    farm: Any, cold: GatewayService, door: GatewayService, siren: RelayBoard, stack_light: RelayBoard,
    cloud: Any, open_alerts: int,
) -> str:  # fmt: skip
    app = cold.app
    offline = [s.id for s in app.status_parts().sensors if not s.online] if app else []
    depth = sum(s.uplink.outbox.depth() for s in (cold, door) if s.uplink is not None)
    stats = cloud.ingest_stats()
    return (
        f"scenario {hhmm(farm.farm.clock.now())} | ingested {stats.new_readings} readings"
        f" (refused {stats.dead_letters + stats.not_enrolled})"
        f" | alerts open {open_alerts} | outboxes {depth}"
        f" | siren {'ON' if siren.coil(0) else 'off'} | stack light {'ON' if stack_light.coil(0) else 'off'}"
        f" | offline {', '.join(offline) or 'none'}"
        f" | recall list {_held(door)}"
    )


async def _dock(dock: DemoDock, *args: Any) -> None:
    """The dock's story beside the cold rooms': a failure in it is printed and ends only the dock."""
    try:
        await dock.run(*args)
    except Exception as exc:  # the cold-room part goes on
        logging.getLogger(__name__).exception("the dock's part of the demo failed")
        click.echo(f"  DOCK  failed: {exc}")


def _held(service: GatewayService) -> str:
    """What the gateway's door checks hold of the cloud's recall list (pushed down, retained)."""
    recalls = service.recalls
    if recalls is None:
        return "not received yet"
    return f"v{recalls.version} at the gateway ({len(recalls.entries)} entries)"


@click.group(invoke_without_command=True)
@click.option("--loggers", "count", type=click.IntRange(2, 100), default=10, show_default=True)
@click.option(
    "--speed",
    type=click.FloatRange(min=1.0),
    default=60.0,
    show_default=True,
    help="Scenario time per real second (60: an hour of cold-room life per minute).",
)
@click.option("--interval", type=click.FloatRange(min=0.2), default=2.0, show_default=True)
@click.option(
    "--broker",
    "broker_url",
    default=None,
    help="Use this MQTT broker (mqtt://host:port, MQTT 5) instead of the embedded amqtt.",
)
@click.option("--api-port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--duration", type=click.FloatRange(min=0), default=None, help="Stop after SECONDS.")
@click.option(
    "--story",
    is_flag=True,
    help="Tell the scenario as a story: chapters as it reaches them, a quiet status line, about three "
    "minutes at the default speed; the site runs on afterwards.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the gateway keeps its outbox and the cloud its database (default: a new temp directory).",
)
@click.pass_context
def demo(
    ctx: click.Context,
    count: int,
    speed: float,
    interval: float,
    duration: float | None,
    data_dir: Path | None,
    broker_url: str | None,
    api_port: int,
    story: bool,
) -> None:
    """Run a simulated site (cold rooms and a dock door), its two gateways, a broker and the cloud, and
    watch them live (Ctrl-C stops it)."""
    if ctx.invoked_subcommand is not None:
        return
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    # The screen is the story: a 1-s QA job skipped while the last run is busy is no news there.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    directory = (data_dir or Path(tempfile.mkdtemp(prefix="coldgate-demo-"))).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    asyncio.run(run_demo(count, speed, interval, duration, directory, broker_url, api_port, story))
