"""``coldgate cloud documents``: what an operator runs on the documents from a shell.

Binding is derived (DESIGN.md principle 9): after a document or the catalog was corrected, or after an
upgrade changed how items are identified, ``rebind`` computes every binding again from the stored
items; the same records give the same bindings, so running it twice changes nothing.  The scheduler
binds new items by itself; this is for the past.
"""

from __future__ import annotations

import click

from coldgate.cloud.cli_transaction import load_config, transaction, utc_now

__all__ = ["documents"]


@click.group("documents")
def documents() -> None:
    """Inventory documents: receiving notes, dispatch orders, transfers."""


@documents.command("rebind")
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False, path_type=str))
@click.option("--site", default=None, help="Only this site's items (default: every site).")
def rebind_command(config_path: str, site: str | None) -> None:
    """Bind every stored movement and scan again, from the documents' versions and the catalog."""
    from coldgate.cloud.documents.binding_store import rebind

    with transaction(load_config(config_path)) as conn:
        count = rebind(conn, utc_now(), site=site)
    click.echo(f"{count} movement(s) and scan(s) bound again{f' at site {site}' if site else ''}")
