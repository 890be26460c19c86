"""``coldgate cloud archive``: pack old months of readings (``cloud/db/archive.py``), list what was, and
purge archived months whose retention has passed (``cloud/db/purge.py``, ``cloud/db/retention.py``).

Run with the database owner's credentials, like ``coldgate cloud migrate``: the service's role may not
drop a partition.  Each month is its own transaction, so a month that fails leaves those before it
archived and itself as it was.
"""

from __future__ import annotations

import datetime

import click

from coldgate.cloud.cli_transaction import cli_actor, load_config, transaction, utc_now

__all__ = ["archive"]


def _month(value: str) -> datetime.date:
    try:
        return datetime.datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a month written YYYY-MM") from None


def _until(purge_from: datetime.date | None) -> str:
    """A retention's purge date as the last day kept."""
    return "for ever" if purge_from is None else f"until {purge_from - datetime.timedelta(days=1)}"


def _mb(size: int) -> str:
    return f"{size / 1_048_576:,.1f} MB"


@click.group("archive")
def archive() -> None:
    """Old months of readings packed (about a tenth of the bytes), still read by every report."""


@archive.command("run")
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False, path_type=str))
@click.option("--month", "months", multiple=True, help="A month to archive, YYYY-MM (repeatable).")
@click.option("--due", is_flag=True, help="Every month older than --after-months.")
@click.option("--after-months", type=click.IntRange(0, 1200), default=None,
              help="Months kept live before the current one (default 13).")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Say which months would be archived; change nothing.")
def run_command(
    config_path: str, months: tuple[str, ...], due: bool, after_months: int | None, dry_run: bool
) -> None:
    """Archive the months named, or with --due every month old enough."""
    from coldgate.cloud.db.archive import ARCHIVE_AFTER_MONTHS, ArchiveError, archivable_months, archive_month

    keep = ARCHIVE_AFTER_MONTHS if after_months is None else after_months
    if bool(months) == due:
        raise click.UsageError("name months with --month, or ask for --due (not both)")
    config = load_config(config_path)
    chosen = [_month(m) for m in months]
    if due:
        with transaction(config) as conn:
            chosen = archivable_months(conn, utc_now().date(), keep)
        if not chosen:
            click.echo(f"no month is due: every live month is within {keep} months of this one")
            return
    if dry_run:
        for month in chosen:
            click.echo(f"would archive {month:%Y-%m}")
        return
    for month in chosen:
        with transaction(config, refused=(ArchiveError,)) as conn:
            done = archive_month(conn, month, now=utc_now(), actor=cli_actor(), after_months=keep)
        click.echo(
            f"{month:%Y-%m}: {done.readings:,} readings in {done.packs:,} packs, {_mb(done.bytes_before)} -> "
            f"{_mb(done.bytes_after)} ({done.bytes_per_reading_before:.0f} -> "
            f"{done.bytes_per_reading_after:.0f} B a reading), sha256 {done.sha256}"
        )


@archive.command("list")
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False, path_type=str))
def list_command(config_path: str) -> None:
    """One line per archived month: readings, packs, bytes before and after, the hash, and when it was
    purged (its packs deleted once its retention passed; "-": still kept)."""
    from coldgate.cloud.db.archive import archives
    from coldgate.cloud.db.purge import purged

    with transaction(load_config(config_path)) as conn:
        done = archives(conn)
        gone = {p.month: p for p in purged(conn)}
    click.echo("month\treadings\tpacks\tbytes_before\tbytes_after\tsha256\tpurged")
    for a in done:
        p = gone.get(a.month)
        when = "-" if p is None else f"{p.purged_at:%Y-%m-%d} by {p.purged_by}"
        click.echo(
            f"{a.month:%Y-%m}\t{a.readings}\t{a.packs}\t{a.bytes_before}\t{a.bytes_after}\t{a.sha256}\t{when}"
        )
    click.echo(f"{len(done)} month(s) archived, {len(gone)} of them purged")


@archive.command("purge")
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False, path_type=str))
@click.option("--due", is_flag=True, required=True,
              help="Every archived month whose retention has passed (the config's [retention]).")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Say which months would go and why each other is kept.")
def purge_command(config_path: str, due: bool, dry_run: bool) -> None:
    """Delete the packs of archived months no product kept in them needs any more, each with a purge
    record and an audit entry; a live month is never purged.  Each month is its own transaction."""
    from coldgate.cloud.db.purge import PurgeError, purge_month, purge_plan
    from coldgate.cloud.db.retention import RetentionPolicy

    del due  # the only mode: months are chosen by the rule, never by hand
    config = load_config(config_path)
    policy = RetentionPolicy.from_config(config.retention)
    today = utc_now().date()
    with transaction(config, refused=(PurgeError,)) as conn:
        plan = purge_plan(conn, policy)
    click.echo(f"policy: {policy.describe()}")
    for kept in plan:
        if kept.due(today):
            continue
        click.echo(f"keep {kept.month:%Y-%m} {_until(kept.purge_from)}: {kept.rule} "
                   f"({kept.lots} lot(s) kept that month)")  # fmt: skip
    due_months = [kept for kept in plan if kept.due(today)]
    for kept in due_months:
        if dry_run:
            click.echo(f"would purge {kept.month:%Y-%m}: kept {_until(kept.purge_from)} ({kept.rule})")
            continue
        with transaction(config, refused=(PurgeError,)) as conn:
            done = purge_month(conn, kept.month, policy=policy, now=utc_now(), actor=cli_actor())
        click.echo(
            f"purged {done.month:%Y-%m}: {done.readings:,} readings in {done.packs:,} packs, sha256 "
            f"{done.sha256} (kept {_until(done.purge_from)}: {done.rule})"
        )
    if not due_months:
        click.echo(f"no archived month is due for purging ({len(plan)} archived month(s) kept)")
