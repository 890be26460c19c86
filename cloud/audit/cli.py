"""``coldgate cloud audit verify``: recompute the audit trail's hash chain and name the first break."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["audit"]


@click.group("audit")
def audit() -> None:
    """The audit trail: check that nothing in it was changed, removed, inserted or reordered."""


@audit.command("verify")
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
def verify_command(path: str) -> None:
    """Recompute the chain of the database PATH configures, and hold it to the checkpoints ([audit]);
    exit 1 at the first entry that does not fit."""
    import time

    from coldgate.cloud.audit.checkpoint import check, load_private_key
    from coldgate.cloud.audit.log import verify
    from coldgate.cloud.cli_transaction import load_config
    from coldgate.cloud.db.engine import database_url, make_engine
    from coldgate.configfile import ConfigError

    config = load_config(path)
    try:
        url = database_url(config.database)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    points, key_file = config.audit.checkpoint_file, config.audit.checkpoint_key_file
    public_key = load_private_key(Path(key_file)).public_key() if key_file is not None else None
    engine = make_engine(url)
    started = time.perf_counter()
    try:
        with engine.connect() as conn:
            checked, broken = verify(conn)
            if broken is None and points is not None:
                broken = check(conn, Path(points), public_key)
    finally:
        engine.dispose()
    seconds = time.perf_counter() - started
    if broken is not None:
        click.echo(f"audit trail BROKEN at entry {broken.seq}: {broken.why}", err=True)
        raise SystemExit(1)
    against = f", and every checkpoint in {points}" if points is not None else ""
    click.echo(f"audit trail intact: {checked} entries verified in {seconds:.2f} s{against}")
