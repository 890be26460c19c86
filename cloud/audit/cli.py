"""``coldgate cloud audit verify``: recompute the audit trail's hash chain and name the first break."""

from __future__ import annotations

import click

__all__ = ["audit"]


@click.group("audit")
def audit() -> None:
    """The audit trail: check that nothing in it was changed, removed, inserted or reordered."""


@audit.command("verify")
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
def verify_command(path: str) -> None:
    """Recompute the chain of the database PATH configures; exit 1 at the first entry that does not fit."""
    import time

    from coldgate.cloud.audit.log import verify
    from coldgate.cloud.config import load_cloud_config
    from coldgate.cloud.db.engine import database_url, make_engine
    from coldgate.configfile import ConfigError

    try:
        url = database_url(load_cloud_config(path).database)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    engine = make_engine(url)
    started = time.perf_counter()
    try:
        with engine.connect() as conn:
            checked, broken = verify(conn)
    finally:
        engine.dispose()
    seconds = time.perf_counter() - started
    if broken is not None:
        click.echo(f"audit trail BROKEN at entry {broken.seq}: {broken.why}", err=True)
        raise SystemExit(1)
    click.echo(f"audit trail intact: {checked} entries verified in {seconds:.2f} s")
