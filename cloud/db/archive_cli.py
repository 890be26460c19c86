"""``coldgate cloud archive``: pack old months of readings (``cloud/db/archive.py``) and list what was.

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
    """One line per archived month: readings, packs, bytes before and after, the hash."""
    from coldgate.cloud.db.archive import archives

    with transaction(load_config(config_path)) as conn:
        done = archives(conn)
    click.echo("month\treadings\tpacks\tbytes_before\tbytes_after\tsha256")
    for a in done:
        click.echo(f"{a.month:%Y-%m}\t{a.readings}\t{a.packs}\t{a.bytes_before}\t{a.bytes_after}\t{a.sha256}")
    click.echo(f"{len(done)} month(s) archived")
