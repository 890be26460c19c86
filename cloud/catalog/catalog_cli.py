"""``coldgate cloud catalog import``: a CSV file of products, lots or serials into the catalog, from the
cloud host, with the same checks, all-or-nothing rule and audit entry as ``POST /catalog/import/...``.

The import is master data, which the QA manager owns (``catalog.manage``), so ``--by LOGIN`` names the
person who decides it: an active user holding that permission, recorded in the audit entry with the
operating-system account that ran the command as its client (as ``coldgate cloud sites time-zone``).
"""

from __future__ import annotations

from pathlib import Path

import click

from coldgate.cloud.cli_transaction import load_config, transaction, utc_now

__all__ = ["catalog"]

PERMISSION = "catalog.manage"


@click.group("catalog")
def catalog() -> None:
    """Master data: products, lots and their serials."""


@catalog.command("import")
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False, path_type=str))
@click.argument("kind", type=click.Choice(["products", "lots", "serials"]))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--reason", required=True, help="Why the file is imported (audited, kept on each version).")
@click.option("--by", "login", required=True, help="Login of the QA manager who decides it (audited).")
def import_command(config_path: str, kind: str, file: Path, reason: str, login: str) -> None:
    """Import FILE (UTF-8 CSV with a header row) whole, or nothing: every bad row is listed.

    Columns as ``POST /catalog/import/KIND`` documents them (the API's /docs).
    """
    from coldgate.cloud.catalog.csv_import import import_csv
    from coldgate.cloud.catalog.csv_read import ImportRefused
    from coldgate.cloud.catalog.sites_cli import acting_as

    data = file.read_bytes()
    try:
        with transaction(load_config(config_path), refused=(ValueError,)) as conn:
            by = acting_as(conn, login, PERMISSION, "import into the catalog")
            result = import_csv(conn, kind, data, reason=reason, by=by, now=utc_now())
    except click.ClickException as exc:
        cause = exc.__cause__
        if not isinstance(cause, ImportRefused):
            raise
        for error in cause.errors:
            click.echo(f"{file}:{error}", err=True)
        if cause.more:
            click.echo(f"... and {cause.more} more", err=True)
        count = len(cause.errors) + cause.more
        raise click.ClickException(f"{file}: {count} problem(s): nothing imported") from None
    click.echo(f"{file}: {result.rows} row(s) imported: {result.created} created, {result.updated} updated, "
               f"{result.unchanged} unchanged (sha256 {result.sha256})")  # fmt: skip
