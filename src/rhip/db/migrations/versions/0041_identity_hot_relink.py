"""Identity: a full re-link rewrites every record's band and probability in place.

`rhip identity link --full` updates each record's band, probability and linked_by (none indexed); the
person id changes only where a link changed. identity_records carries nine indexes, so an UPDATE whose
new row version does not fit on its page writes an entry into each of them: 200,219 rows took 65 s on
the shared machine. With half of each page kept free the new versions stay on their page (HOT updates,
no index entries): the same UPDATE took 2.7 s. The heap doubles (about 1 GB per 2 million records);
the indexes, larger than the heap, do not change. PostgreSQL only; existing pages keep their fill until
the table is rewritten (`VACUUM FULL identity_records` in a quiet hour).

Revision ID: 0041_identity_hot_relink
Revises: 0040_identity
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0041_identity_hot_relink"
down_revision = "0040_identity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Keep half of each page of identity_records free (PostgreSQL)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE identity_records SET (fillfactor = 50)")


def downgrade() -> None:
    """Back to the default fill."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE identity_records RESET (fillfactor)")
