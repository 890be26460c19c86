"""One key table for every kind of item: ``reading_keys`` becomes ``item_keys``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

Whoever stores a ``(gateway, stream, seq)`` first owns it, whatever its kind:
before this, a forged alert under the seq of a real reading (or the other way
round) was stored beside it, each in its own table, and neither was a
conflict.  The keys of the gaps, alerts and edge items already stored are
copied in (the cloud's own rows, stream ``cloud``, never collide with a
gateway's and are left out); where two kinds already share a key, the first
copied keeps it and both rows stay as they are.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

KINDS = ("gaps", "alerts", "edge_items")


def upgrade() -> None:
    op.rename_table("reading_keys", "item_keys")
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("ALTER INDEX reading_keys_pkey RENAME TO item_keys_pkey")
    for table in KINDS:
        select = f"SELECT gateway, stream, seq, ts FROM {table} WHERE stream <> 'cloud'"
        if postgresql:
            op.execute(f"INSERT INTO item_keys (gateway, stream, seq, ts) {select} ON CONFLICT DO NOTHING")
        else:
            op.execute(f"INSERT OR IGNORE INTO item_keys (gateway, stream, seq, ts) {select}")


def downgrade() -> None:
    for table in KINDS:
        op.execute(
            f"DELETE FROM item_keys WHERE EXISTS (SELECT 1 FROM {table} t "
            "WHERE t.gateway = item_keys.gateway AND t.stream = item_keys.stream AND t.seq = item_keys.seq)"
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER INDEX item_keys_pkey RENAME TO reading_keys_pkey")
    op.rename_table("item_keys", "reading_keys")
