"""MCH: the intake keys of the MCH catalogue tables mapped to the registry rows they became; the
examinations due in each child-year kept with the row; covering indexes for the maternal indicators.

Revision ID: 0091_mch_uploads
Revises: 0090_mch
Create Date: 2026-12-07
"""

from __future__ import annotations

from calendar import monthrange
from datetime import date

import sqlalchemy as sa
from alembic import op

revision = "0091_mch_uploads"
down_revision = "0090_mch"
branch_labels = None
depends_on = None

UNDER3_SCHEDULE = (1, 3, 6, 8, 12, 18, 24, 30, 36)  # months, as rhip.mch.rules at this revision
YEARS_UNITS = ("year", "institution_code", "district_code", "birth_date", "died_on", "exams")
PREGNANCY_UNITS = (
    "district_code",
    "institution_code",
    "delivered_on",
    "live_births",
    "delivery_place",
    "registration_week",
    "first_visit_week",
    "anc_visits",
    "pp_visits_28",
)


def _add_months(day: date, months: int) -> date:
    total = day.year * 12 + day.month - 1 + months
    y, m = divmod(total, 12)
    return date(y, m + 1, min(day.day, monthrange(y, m + 1)[1]))


def upgrade() -> None:
    op.create_table(
        "mch_upload_keys",
        sa.Column("institution_code", sa.String(length=32), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("business_key", sa.String(length=200), nullable=False),
        sa.Column("target_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("batch_id", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("institution_code", "table_name", "business_key"),
    )
    op.create_index("ix_mch_upload_keys_target", "mch_upload_keys", ["table_name", "target_id"])
    with op.batch_alter_table("mch_child_years") as batch:
        batch.add_column(sa.Column("expected", sa.SmallInteger(), server_default="0", nullable=False))
    years = sa.table(
        "mch_child_years", sa.column("year"), sa.column("birth_date", sa.Date), sa.column("expected")
    )
    conn = op.get_bind()
    for (year,) in conn.execute(sa.select(years.c.year).distinct()).all():
        # the rows already there get what rules.expected_exams gives new ones
        lo, hi = date(int(year) - 1, 10, 1), date(int(year), 9, 30)
        due = sum(
            (
                sa.case((years.c.birth_date.between(_add_months(lo, -m), _add_months(hi, -m)), 1), else_=0)
                for m in UNDER3_SCHEDULE
            ),
            sa.literal(0),
        )
        conn.execute(sa.update(years).where(years.c.year == year).values(expected=due))
    op.drop_index("ix_mch_child_years_units", table_name="mch_child_years")
    op.create_index("ix_mch_child_years_units", "mch_child_years", [*YEARS_UNITS, "expected"])
    op.create_index("ix_mch_pregnancies_units", "mch_pregnancies", list(PREGNANCY_UNITS))
    op.create_index("ix_mch_pregnancies_death", "mch_pregnancies", ["maternal_death_on"])


def downgrade() -> None:
    op.drop_index("ix_mch_pregnancies_death", table_name="mch_pregnancies")
    op.drop_index("ix_mch_pregnancies_units", table_name="mch_pregnancies")
    op.drop_index("ix_mch_child_years_units", table_name="mch_child_years")
    op.create_index("ix_mch_child_years_units", "mch_child_years", list(YEARS_UNITS))
    with op.batch_alter_table("mch_child_years") as batch:
        batch.drop_column("expected")
    op.drop_index("ix_mch_upload_keys_target", table_name="mch_upload_keys")
    op.drop_table("mch_upload_keys")
