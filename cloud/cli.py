"""``coldgate cloud``: commands that run the cloud service."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

import click

from coldgate.cloud.audit.cli import audit
from coldgate.cloud.catalog.catalog_cli import catalog
from coldgate.cloud.catalog.sites_cli import sites
from coldgate.cloud.cli_transaction import load_config
from coldgate.cloud.db.archive_cli import archive
from coldgate.cloud.documents.documents_cli import documents
from coldgate.cloud.identity.cli import gateways
from coldgate.cloud.identity.tokens_cli import tokens
from coldgate.cloud.identity.users_cli import users

if TYPE_CHECKING:
    from coldgate.cloud.config import CloudConfig
    from coldgate.cloud.config_checks import CloudChecks, Parts


@click.group()
def cloud() -> None:
    """Run the cloud ingest, API and migrations."""


cloud.add_command(gateways)
cloud.add_command(audit)
cloud.add_command(users)
cloud.add_command(tokens)
cloud.add_command(sites)
cloud.add_command(catalog)
cloud.add_command(documents)
cloud.add_command(archive)


def _checked(path: str, config: CloudConfig, parts: Parts) -> CloudChecks:
    """The checks of ``config_checks`` for ``parts``; each problem is one line on stderr, and the command
    exits 1 before anything is migrated or started."""
    from coldgate.cloud.config_checks import check_cloud_config

    report = check_cloud_config(config, parts)
    for problem in report.problems:
        click.echo(f"Error: {problem.in_file(path)}", err=True)
    if not report.ok:
        raise click.exceptions.Exit(1)
    return report


@cloud.command("check-config")
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--offline",
    is_flag=True,
    help="Check the file alone (on a workstation without the host's secrets): open none of the files it "
    "names and do not reach the database.",
)
def check_config(path: str, offline: bool) -> None:
    """Check a cloud TOML file and everything `cloud run` will need from it: the files it names exist and
    parse, the database is reached.  Prints one line per mistake, or a summary."""
    from coldgate.cloud.config_checks import Parts

    config = load_config(path)
    report = _checked(path, config, Parts(connect=not offline))
    dialect = config.database.url.split("://", 1)[0]
    if offline:
        click.echo(f"{path}: ok: database {dialect}; named files and the database not checked (--offline)")
        return
    reached = " (reached)" if report.database_reached else ""
    files = ", ".join(report.files) or "none named"
    click.echo(f"{path}: ok: database {dialect}{reached}; files read: {files}")


@cloud.command("migrate")
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
def migrate_command(path: str) -> None:
    """Upgrade the configured database to the newest schema (safe to repeat)."""
    from coldgate.cloud.config_checks import Parts
    from coldgate.cloud.db.engine import database_url
    from coldgate.cloud.db.migrate import migrate
    from coldgate.configfile import ConfigError

    config = load_config(path)
    _checked(path, config, Parts(ingest=False, api=False, scheduler=False))  # the database only
    try:
        url = database_url(config.database)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    migrate(url)
    click.echo(f"{path}: database {url.render_as_string(hide_password=True)} is at the newest schema")


def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM (systemd's stop), so the caller can shut down cleanly."""
    import signal
    import threading

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass


@cloud.command("run")
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
@click.option("--no-ingest", is_flag=True, help="Leave ingest to separate `coldgate cloud ingest` processes.")
@click.option("--no-api", is_flag=True, help="Do not serve the REST API from this process.")
def run_command(path: str, no_ingest: bool, no_api: bool) -> None:
    """Run the cloud: check, migrate, then ingest workers, the scheduler and the API until stopped."""
    import logging

    from coldgate.cloud.config_checks import Parts
    from coldgate.cloud.service import CloudService
    from coldgate.configfile import ConfigError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(path)
    # Before migrating or starting anything: a missing file must not leave a half-started cloud behind.
    _checked(path, config, Parts(ingest=not no_ingest, api=not no_api, listen=not no_api))
    service = CloudService(config, ingest=not no_ingest, api=not no_api)
    try:
        service.start()
    except (ConfigError, OSError, TimeoutError) as exc:
        raise click.ClickException(str(exc)) from exc
    parts = []
    if not no_ingest:
        parts.append(f"{config.mqtt.workers} ingest worker(s) on {config.mqtt.broker}")
    if not no_api:
        parts.append(f"API on {service.api_url}")
    click.echo(f"cloud running: {', '.join(parts) or 'scheduler only'}")
    try:
        _wait_for_signal()
    finally:
        service.stop()
    click.echo("cloud stopped")


@cloud.command("ingest")
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--worker",
    "n",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker number: the MQTT client id is <client_id>-<n>; keep it stable per process.",
)
@click.option(
    "--metrics-listen",
    "listen",
    default=None,
    metavar="HOST:PORT",
    help="Serve this worker's counters for Prometheus at http://HOST:PORT/metrics (one port per worker).",
)
def ingest_command(path: str, n: int, listen: str | None) -> None:
    """Run one ingest worker (scale out with several processes on the shared subscription)."""
    import logging

    from coldgate.cloud.config_checks import Parts
    from coldgate.cloud.db.engine import database_url, make_engine
    from coldgate.cloud.db.migrate import migrate
    from coldgate.cloud.ingest.influx_mirror import InfluxMirror
    from coldgate.cloud.ingest.limits import IngestLimits
    from coldgate.cloud.ingest.metrics import IngestMetricsServer
    from coldgate.cloud.ingest.worker import IngestWorker
    from coldgate.configfile import ConfigError
    from coldgate.gateway.metrics import parse_listen

    try:  # before anything is read or migrated
        where = None if listen is None else parse_listen(listen)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--metrics-listen") from exc
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(path)
    if config.mqtt.protocol == "3.1.1" and n > 1:
        raise click.ClickException(
            "mqtt.protocol is 3.1.1, which has no shared subscriptions: a second worker would store "
            'every message again; run one worker, or use protocol = "5"'
        )
    _checked(path, config, Parts(api=False, scheduler=False))
    try:
        url = database_url(config.database)
        mirror = InfluxMirror.from_config(config.influx)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    migrate(url)
    engine = make_engine(url, writer=True, pool_size=2)
    limits = IngestLimits.from_config(config.ingest)
    worker = IngestWorker(engine, config.mqtt, n, mirror=mirror, limits=limits).start(wait_subscribed_s=None)
    click.echo(f"ingest worker {worker.client_id} consuming from {config.mqtt.broker}")
    served = None
    if where is not None:

        def counts() -> dict[str, int]:
            taken = worker.snapshot()
            counted = {name: getattr(taken, name) for name in taken.COUNTERS}
            return {**counted, "connected": int(taken.connected)}

        try:
            served = IngestMetricsServer(*where, counts, worker.client_id).start()
            click.echo(f"metrics for Prometheus at http://{served.host}:{served.port}/metrics")
        except OSError as exc:  # a taken port costs the figures, never the ingest
            click.echo(f"warning: no metrics: cannot listen on {listen}: {exc.strerror or exc}", err=True)
    try:
        _wait_for_signal()
    finally:
        if served is not None:
            served.stop()
        worker.stop()
        if mirror is not None:
            mirror.close()
        engine.dispose()
    stats = worker.snapshot()
    click.echo(f"stopped: {stats.new} items stored, {stats.dead_letters} dead letters")


@cloud.group("dead-letters")
def dead_letters() -> None:
    """List dead letters, and replay them once whatever refused them is fixed."""


def _writer_engine(path: str):  # type: ignore[no-untyped-def]
    from coldgate.cloud.db.engine import database_url, make_engine
    from coldgate.cloud.db.migrate import migrate
    from coldgate.configfile import ConfigError

    config = load_config(path)
    try:
        url = database_url(config.database)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    migrate(url)
    return make_engine(url, writer=True, pool_size=1)


@dead_letters.command("list")
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
@click.option("--gateway", help="Only this gateway's (the one the topic names).")
@click.option("--all", "everything", is_flag=True, help="Also those a replay has stored.")
def list_dead_letters(path: str, gateway: str | None, everything: bool) -> None:
    """One line per dead letter: id, when, gateway, times received, path, reason, replay state."""
    from sqlalchemy import select

    from coldgate.cloud.db.models import DeadLetter, DeadLetterReplay
    from coldgate.cloud.ingest.replay import DONE, replayable

    engine = _writer_engine(path)
    try:
        can_replay = set(replayable(engine, gateway=gateway))
        query = select(
            DeadLetter.id,
            DeadLetter.received_at,
            DeadLetter.gateway,
            DeadLetter.repeats,
            DeadLetter.path,
            DeadLetter.reason,
        ).order_by(DeadLetter.id)
        if gateway is not None:
            query = query.where(DeadLetter.gateway == gateway)
        with engine.connect() as conn:
            letters = conn.execute(query).all()
            last = {
                r.dead_letter_id: r
                for r in conn.execute(
                    select(
                        DeadLetterReplay.dead_letter_id,
                        DeadLetterReplay.replayed_at,
                        DeadLetterReplay.by,
                        DeadLetterReplay.outcome,
                    ).order_by(DeadLetterReplay.id)
                ).all()
            }
    finally:
        engine.dispose()
    shown = 0
    for letter in letters:
        replay = last.get(letter.id)
        if replay is not None and replay.outcome in DONE and not everything:
            continue
        shown += 1
        if replay is not None:
            state = f"replayed {replay.replayed_at:%Y-%m-%d %H:%M} by {replay.by}: {replay.outcome}"
        else:
            state = "replayable" if letter.id in can_replay else "not replayable"
        click.echo(
            f"{letter.id}\t{letter.received_at:%Y-%m-%d %H:%M:%S}\t{letter.gateway or '-'}\t"
            f"x{letter.repeats + 1}\t{letter.path or '$'}\t{letter.reason[:200]}\t[{state}]"
        )
    click.echo(f"{shown} dead letter(s){'' if everything else ' not stored by a replay'}")


@dead_letters.command("replay")
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
@click.option("--id", "ids", type=int, multiple=True, help="A dead letter's id (repeatable).")
@click.option("--all", "everything", is_flag=True, help="Every dead letter not yet stored by a replay.")
@click.option("--gateway", help="Only this gateway's.")
@click.option("--by", required=True, help="Who replays (kept with each attempt).")
def replay_dead_letters_command(
    path: str, ids: tuple[int, ...], everything: bool, gateway: str | None, by: str
) -> None:
    """Store dead letters again through live ingest's path; every attempt is recorded."""
    import datetime

    from coldgate.cloud.ingest.replay import replay_dead_letters

    if bool(ids) == everything:
        raise click.UsageError("give --id N (one or more) or --all")
    if not by.strip():
        raise click.UsageError("--by must name who replays")
    engine = _writer_engine(path)
    try:
        results = replay_dead_letters(
            engine,
            by=by.strip()[:64],
            now=datetime.datetime.now(datetime.UTC),
            ids=list(ids) or None,
            gateway=gateway,
            # Each as it is committed: a later failure must not hide what was already replayed.
            report=lambda r: click.echo(f"{r.dead_letter_id}\t{r.outcome}\t{r.detail}"),
        )
    finally:
        engine.dispose()
    stored = sum(1 for r in results if r.outcome != "refused")
    click.echo(f"{len(results)} replayed: {stored} stored or already there, {len(results) - stored} refused")
    missing = sorted(set(ids) - {r.dead_letter_id for r in results})
    if missing:
        click.echo(
            "not replayable (no such id, already stored, or not a batch a replay could store): "
            + ", ".join(map(str, missing))
        )


def _stamp(moment: datetime.datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}"


@dead_letters.command("budgets")
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
@click.option("--capped", is_flag=True, help="Only the sources capped now.")
def dead_letter_budgets_command(path: str, capped: bool) -> None:
    """One line per source: its window, kept and dropped there, dropped in all, and whether capped now.

    Judged with this config's [ingest] budget, the one ingest applies: a
    source whose window has passed starts a new one at its next dead letter.
    """
    from coldgate.cloud.api.queries_refusals import dead_letter_budgets
    from coldgate.cloud.ingest.limits import IngestLimits

    budget = IngestLimits.from_config(load_config(path).ingest).budget
    engine = _writer_engine(path)
    try:
        with engine.connect() as conn:
            found = dead_letter_budgets(
                conn, budget, datetime.datetime.now(datetime.UTC), capped=True if capped else None
            )
    finally:
        engine.dispose()
    for entry in found.items:
        window = "open" if entry.window_open else "over"
        state = "CAPPED" if entry.capped else "ok"
        click.echo(
            f"{entry.source}\twindow {_stamp(entry.window_start)} ({window})\t"
            f"kept {entry.kept} ({entry.kept_bytes} B)\tdropped {entry.dropped} ({entry.dropped_bytes} B)\t"
            f"dropped in all {entry.dropped_total}\t[{state}]"
        )
    now_capped = sum(1 for entry in found.items if entry.capped)
    click.echo(
        f"{found.total} source(s), {now_capped} capped now "
        f"(budget: {budget.rows} letters or {budget.bytes} bytes per {budget.window_s:.0f} s)"
    )


@cloud.command("unknown-gateways")
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
@click.option("--site", help="Only ids refused under this site's topics.")
def unknown_gateways_command(path: str, site: str | None) -> None:
    """One line per gateway id ingest refused, most recently heard first: id, site, messages, bytes,
    first and last seen, why.

    Only the first message of each id was kept (a dead letter); this is where
    the rest were counted, so a gateway missing its enrolment shows up here.
    """
    from coldgate.cloud.api.queries_refusals import unknown_gateways

    engine = _writer_engine(path)
    try:
        with engine.connect() as conn:
            found = unknown_gateways(conn, site=site)
    finally:
        engine.dispose()
    for entry in found.items:
        note = "\t[enrolled since]" if entry.enrolled_now else ""
        click.echo(
            f"{entry.gateway}\t{entry.site or '-'}\t{entry.messages} message(s)\t{entry.payload_bytes} B\t"
            f"{_stamp(entry.first_seen)}\t{_stamp(entry.last_seen)}\t{entry.why[:200]}{note}"
        )
    click.echo(f"{found.total} unknown gateway id(s)")
