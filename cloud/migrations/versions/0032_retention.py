"""Retention: each product's retention category, and the record of every archived month purged.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07

* ``products.retention``: "standard", "device" or "implant" (``cloud/db/retention.py`` says what each keeps:
  by default five years after the month, two years past a device lot's expiry, an implant's for ever).
  Existing versions are "standard", the shortest rule; a product that is a device or an implant is given
  its category by a new version, like any other change of master data.
* ``reading_purges``: one row per archived month whose packs were deleted once no product kept during it
  needed them (``cloud/db/purge.py``): the scope ("all": every site), how many readings and packs went,
  the archive's SHA-256 of them, the rule that let them go and the date it allowed from, the lot that held
  the month longest, who and when.  Only an archived month can have one (a foreign key to
  ``reading_archives``).  A record: append-only on both dialects, written by the schema owner only.
* ``reading_packs`` (PostgreSQL) still refuses UPDATE and TRUNCATE, and now refuses a DELETE unless the
  month's purge record is already written (the purge writes it first, in the same transaction): packs
  never go without saying so.  The service's role has no DELETE grant on them either.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from coldgate.cloud.migrations.append_only import make_append_only

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

_PURGE_CHECK = """
CREATE FUNCTION coldgate_reading_packs_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM reading_purges WHERE month = OLD.month) THEN RETURN OLD; END IF;
    RAISE EXCEPTION 'reading_packs is append-only: DELETE refused (a month''s packs go only after its '
                    'purge record is written to reading_purges)' USING ERRCODE = 'insufficient_privilege';
END $$
"""


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.add_column(
        "products", sa.Column("retention", sa.String(16))  # null: not yet categorised, kept for ever
    )
    op.create_table(
        "reading_purges",
        sa.Column("month", sa.Date, sa.ForeignKey("reading_archives.month"), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("readings", sa.BigInteger, nullable=False),
        sa.Column("packs", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("purge_from", sa.Date, nullable=False),
        sa.Column("lots", sa.Integer, nullable=False),
        sa.Column("held_longest_by", sa.Text),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purged_by", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("month", "scope"),
    )
    make_append_only(["reading_purges"])
    if not postgres:
        return
    op.execute("DROP TRIGGER reading_packs_append_only ON reading_packs")
    op.execute(
        "CREATE TRIGGER reading_packs_append_only BEFORE UPDATE ON reading_packs "
        "FOR EACH ROW EXECUTE FUNCTION coldgate_refuse_change()"
    )
    op.execute(_PURGE_CHECK)
    op.execute(
        "CREATE TRIGGER reading_packs_purged_only BEFORE DELETE ON reading_packs "
        "FOR EACH ROW EXECUTE FUNCTION coldgate_reading_packs_delete()"
    )
    # Purging is the schema owner's, like archiving: the service's role only reads the record.
    op.execute(
        """
        DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldgate_app') THEN
                REVOKE INSERT ON reading_purges FROM coldgate_app;
            END IF;
        END $$
        """
    )


def downgrade() -> None:
    # Refused once it would lose records: a purged month's record is what tells its silence from a gap
    # in every report, and the categories QA set are what keep devices' and implants' months.
    bind = op.get_bind()
    purges = bind.exec_driver_sql("SELECT count(*) FROM reading_purges").scalar_one()
    categorised = bind.exec_driver_sql(
        "SELECT count(*) FROM products WHERE retention IS NOT NULL"
    ).scalar_one()
    if purges or categorised:
        raise RuntimeError(
            f"downgrade below 0032 refused: {purges} purged month(s) and {categorised} product version(s) "
            "with a retention category would be lost (restore a backup from before 0032 instead)"
        )
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER reading_packs_purged_only ON reading_packs")
        op.execute("DROP FUNCTION coldgate_reading_packs_delete()")
        op.execute("DROP TRIGGER reading_packs_append_only ON reading_packs")
        op.execute(
            "CREATE TRIGGER reading_packs_append_only BEFORE UPDATE OR DELETE ON reading_packs "
            "FOR EACH ROW EXECUTE FUNCTION coldgate_refuse_change()"
        )
        op.drop_table("reading_purges")
        op.drop_column("products", "retention")
    else:
        op.drop_table("reading_purges")
        # SQLite (3.35+) drops a column in place; a batch copy would lose the table's append-only triggers.
        op.execute("ALTER TABLE products DROP COLUMN retention")
