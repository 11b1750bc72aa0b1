"""MCH: pregnancy episodes, antenatal visits, risk assessments, case follow-ups, postpartum visits, transfers,
children, their visits and examination rollups, reminders.

Revision ID: 0090_mch
Revises: 0002_registry
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rhip.db.base

revision = "0090_mch"
down_revision = "0002_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mch_pregnancies",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("institution_code", sa.String(length=32), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("registered_institution_code", sa.String(length=32), nullable=False),
        sa.Column("registered_district_code", sa.String(length=6), nullable=False),
        sa.Column("local_id", sa.String(length=64), nullable=False),
        sa.Column("id_number", sa.String(length=18), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("registered_on", sa.Date(), nullable=False),
        sa.Column("registration_week", sa.SmallInteger(), nullable=False),
        sa.Column("lmp", sa.Date(), nullable=False),
        sa.Column("edd", sa.Date(), nullable=False),
        sa.Column("gravidity", sa.SmallInteger(), nullable=False),
        sa.Column("parity", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("colour", sa.String(length=8), nullable=True),
        sa.Column("purple", sa.Boolean(), nullable=False),
        sa.Column("case_owner", sa.String(length=64), nullable=True),
        sa.Column("case_opened_on", sa.Date(), nullable=True),
        sa.Column("next_follow_up_on", sa.Date(), nullable=True),
        sa.Column("delivered_on", sa.Date(), nullable=True),
        sa.Column("delivery_week", sa.SmallInteger(), nullable=True),
        sa.Column("delivery_place", sa.String(length=16), nullable=True),
        sa.Column("delivery_institution_code", sa.String(length=32), nullable=True),
        sa.Column("delivery_district_code", sa.String(length=6), nullable=True),
        sa.Column("delivery_method", sa.String(length=16), nullable=True),
        sa.Column("live_births", sa.SmallInteger(), nullable=True),
        sa.Column("stillbirths", sa.SmallInteger(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("maternal_death_on", sa.Date(), nullable=True),
        sa.Column("anc_visits", sa.SmallInteger(), nullable=False),
        sa.Column("first_visit_week", sa.SmallInteger(), nullable=True),
        sa.Column("pp_visits_28", sa.SmallInteger(), nullable=False),
        sa.Column("created_at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mch_pregnancies")),
        sa.UniqueConstraint(
            "institution_code", "local_id", name=op.f("uq_mch_pregnancies_institution_code_local_id")
        ),
    )
    op.create_index(
        "ix_mch_pregnancies_delivered",
        "mch_pregnancies",
        ["delivered_on", "district_code", "institution_code"],
        unique=False,
    )
    op.create_index(
        op.f("ix_mch_pregnancies_district_code"), "mch_pregnancies", ["district_code"], unique=False
    )
    op.create_index(op.f("ix_mch_pregnancies_id_number"), "mch_pregnancies", ["id_number"], unique=False)
    op.create_index(
        op.f("ix_mch_pregnancies_next_follow_up_on"), "mch_pregnancies", ["next_follow_up_on"], unique=False
    )
    op.create_index(op.f("ix_mch_pregnancies_person_id"), "mch_pregnancies", ["person_id"], unique=False)
    op.create_index(
        op.f("ix_mch_pregnancies_registered_on"), "mch_pregnancies", ["registered_on"], unique=False
    )
    op.create_table(
        "mch_antenatal_visits",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("pregnancy_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("visit_date", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("gestational_week", sa.SmallInteger(), nullable=False),
        sa.Column("institution_code", sa.String(length=32), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("systolic", sa.SmallInteger(), nullable=True),
        sa.Column("diastolic", sa.SmallInteger(), nullable=True),
        sa.Column("weight_kg", sa.Numeric(precision=5, scale=1), nullable=True),
        sa.Column("haemoglobin", sa.SmallInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["pregnancy_id"],
            ["mch_pregnancies.id"],
            name=op.f("fk_mch_antenatal_visits_pregnancy_id_mch_pregnancies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mch_antenatal_visits")),
    )
    op.create_index(
        "ix_mch_antenatal_visits_pregnancy",
        "mch_antenatal_visits",
        ["pregnancy_id", "kind", "gestational_week"],
        unique=False,
    )
    op.create_index(
        op.f("ix_mch_antenatal_visits_visit_date"), "mch_antenatal_visits", ["visit_date"], unique=False
    )
    op.create_table(
        "mch_case_follow_ups",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("pregnancy_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("followed_on", sa.Date(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("next_due_on", sa.Date(), nullable=True),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["pregnancy_id"],
            ["mch_pregnancies.id"],
            name=op.f("fk_mch_case_follow_ups_pregnancy_id_mch_pregnancies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mch_case_follow_ups")),
    )
    op.create_index(
        op.f("ix_mch_case_follow_ups_pregnancy_id"), "mch_case_follow_ups", ["pregnancy_id"], unique=False
    )
    op.create_table(
        "mch_children",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("institution_code", sa.String(length=32), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("local_id", sa.String(length=64), nullable=False),
        sa.Column("pregnancy_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("birth_order", sa.SmallInteger(), nullable=False),
        sa.Column("mother_id_number", sa.String(length=18), nullable=False),
        sa.Column("id_number", sa.String(length=18), nullable=True),
        sa.Column("person_id", sa.String(length=64), nullable=True),
        sa.Column("linked_on", sa.Date(), nullable=True),
        sa.Column("birth_certificate_no", sa.String(length=16), nullable=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("sex", sa.String(length=1), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("birth_weight_g", sa.SmallInteger(), nullable=True),
        sa.Column("birth_week", sa.SmallInteger(), nullable=True),
        sa.Column("registered_on", sa.Date(), nullable=False),
        sa.Column("died_on", sa.Date(), nullable=True),
        sa.Column("death_age_months", sa.SmallInteger(), nullable=True),
        sa.Column("newborn_visit_age", sa.SmallInteger(), nullable=True),
        sa.Column("created_at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pregnancy_id"],
            ["mch_pregnancies.id"],
            name=op.f("fk_mch_children_pregnancy_id_mch_pregnancies"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mch_children")),
        sa.UniqueConstraint("birth_certificate_no", name=op.f("uq_mch_children_birth_certificate_no")),
        sa.UniqueConstraint(
            "institution_code", "local_id", name=op.f("uq_mch_children_institution_code_local_id")
        ),
    )
    op.create_index(
        "ix_mch_children_birth",
        "mch_children",
        ["birth_date", "district_code", "institution_code"],
        unique=False,
    )
    op.create_index(op.f("ix_mch_children_district_code"), "mch_children", ["district_code"], unique=False)
    op.create_index(op.f("ix_mch_children_id_number"), "mch_children", ["id_number"], unique=False)
    op.create_index(
        op.f("ix_mch_children_mother_id_number"), "mch_children", ["mother_id_number"], unique=False
    )
    op.create_index(op.f("ix_mch_children_person_id"), "mch_children", ["person_id"], unique=False)
    op.create_index(op.f("ix_mch_children_pregnancy_id"), "mch_children", ["pregnancy_id"], unique=False)
    op.create_index(op.f("ix_mch_children_registered_on"), "mch_children", ["registered_on"], unique=False)
    op.create_index(
        "ix_mch_children_units",
        "mch_children",
        [
            "institution_code",
            "district_code",
            "birth_date",
            "died_on",
            "death_age_months",
            "newborn_visit_age",
        ],
        unique=False,
    )
    op.create_table(
        "mch_postpartum_visits",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("pregnancy_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("visit_date", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("seq", sa.SmallInteger(), nullable=False),
        sa.Column("days_after", sa.SmallInteger(), nullable=False),
        sa.Column("institution_code", sa.String(length=32), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["pregnancy_id"],
            ["mch_pregnancies.id"],
            name=op.f("fk_mch_postpartum_visits_pregnancy_id_mch_pregnancies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mch_postpartum_visits")),
    )
    op.create_index(
        "ix_mch_postpartum_visits_pregnancy",
        "mch_postpartum_visits",
        ["pregnancy_id", "kind", "days_after"],
        unique=False,
    )
    op.create_index(
        op.f("ix_mch_postpartum_visits_visit_date"), "mch_postpartum_visits", ["visit_date"], unique=False
    )
    op.create_table(
        "mch_reminders",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("pregnancy_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("institution_code", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("read_at", rhip.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["pregnancy_id"],
            ["mch_pregnancies.id"],
            name=op.f("fk_mch_reminders_pregnancy_id_mch_pregnancies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mch_reminders")),
        sa.UniqueConstraint(
            "pregnancy_id", "kind", "due_on", name=op.f("uq_mch_reminders_pregnancy_id_kind_due_on")
        ),
    )
    op.create_index(
        op.f("ix_mch_reminders_institution_code"), "mch_reminders", ["institution_code"], unique=False
    )
    op.create_index(op.f("ix_mch_reminders_pregnancy_id"), "mch_reminders", ["pregnancy_id"], unique=False)
    op.create_table(
        "mch_risk_assessments",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("pregnancy_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("assessed_on", sa.Date(), nullable=False),
        sa.Column("colour", sa.String(length=8), nullable=False),
        sa.Column("purple", sa.Boolean(), nullable=False),
        sa.Column("previous_colour", sa.String(length=8), nullable=True),
        sa.Column("previous_purple", sa.Boolean(), nullable=True),
        sa.Column("factors", sa.Text(), nullable=False),
        sa.Column("assessed_by", sa.String(length=128), nullable=False),
        sa.Column("institution_code", sa.String(length=32), nullable=False),
        sa.Column("reported", sa.Boolean(), nullable=False),
        sa.Column("at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pregnancy_id"],
            ["mch_pregnancies.id"],
            name=op.f("fk_mch_risk_assessments_pregnancy_id_mch_pregnancies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mch_risk_assessments")),
    )
    op.create_index(
        op.f("ix_mch_risk_assessments_pregnancy_id"), "mch_risk_assessments", ["pregnancy_id"], unique=False
    )
    op.create_table(
        "mch_transfers",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("pregnancy_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("moved_on", sa.Date(), nullable=False),
        sa.Column("from_institution_code", sa.String(length=32), nullable=False),
        sa.Column("from_district_code", sa.String(length=6), nullable=False),
        sa.Column("to_institution_code", sa.String(length=32), nullable=False),
        sa.Column("to_district_code", sa.String(length=6), nullable=False),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["pregnancy_id"],
            ["mch_pregnancies.id"],
            name=op.f("fk_mch_transfers_pregnancy_id_mch_pregnancies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mch_transfers")),
    )
    op.create_index(op.f("ix_mch_transfers_pregnancy_id"), "mch_transfers", ["pregnancy_id"], unique=False)
    op.create_table(
        "mch_child_visits",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("child_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("visit_date", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("age_days", sa.Integer(), nullable=False),
        sa.Column("institution_code", sa.String(length=32), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("weight_kg", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column("length_cm", sa.Numeric(precision=5, scale=1), nullable=True),
        sa.Column("head_cm", sa.Numeric(precision=4, scale=1), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["child_id"],
            ["mch_children.id"],
            name=op.f("fk_mch_child_visits_child_id_mch_children"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mch_child_visits")),
    )
    op.create_index(
        "ix_mch_child_visits_child",
        "mch_child_visits",
        ["child_id", "visit_date", "kind", "age_days"],
        unique=False,
    )
    op.create_index(op.f("ix_mch_child_visits_visit_date"), "mch_child_visits", ["visit_date"], unique=False)
    op.create_table(
        "mch_child_years",
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("child_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("exams", sa.Integer(), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.Column("institution_code", sa.String(length=32), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("died_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["child_id"],
            ["mch_children.id"],
            name=op.f("fk_mch_child_years_child_id_mch_children"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("year", "child_id", name=op.f("pk_mch_child_years")),
    )
    op.create_index(
        "ix_mch_child_years_units",
        "mch_child_years",
        ["year", "institution_code", "district_code", "birth_date", "died_on", "exams"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_mch_child_years_units", table_name="mch_child_years")
    op.drop_table("mch_child_years")
    op.drop_index(op.f("ix_mch_child_visits_visit_date"), table_name="mch_child_visits")
    op.drop_index("ix_mch_child_visits_child", table_name="mch_child_visits")
    op.drop_table("mch_child_visits")
    op.drop_index(op.f("ix_mch_transfers_pregnancy_id"), table_name="mch_transfers")
    op.drop_table("mch_transfers")
    op.drop_index(op.f("ix_mch_risk_assessments_pregnancy_id"), table_name="mch_risk_assessments")
    op.drop_table("mch_risk_assessments")
    op.drop_index(op.f("ix_mch_reminders_pregnancy_id"), table_name="mch_reminders")
    op.drop_index(op.f("ix_mch_reminders_institution_code"), table_name="mch_reminders")
    op.drop_table("mch_reminders")
    op.drop_index(op.f("ix_mch_postpartum_visits_visit_date"), table_name="mch_postpartum_visits")
    op.drop_index("ix_mch_postpartum_visits_pregnancy", table_name="mch_postpartum_visits")
    op.drop_table("mch_postpartum_visits")
    op.drop_index("ix_mch_children_units", table_name="mch_children")
    op.drop_index(op.f("ix_mch_children_registered_on"), table_name="mch_children")
    op.drop_index(op.f("ix_mch_children_pregnancy_id"), table_name="mch_children")
    op.drop_index(op.f("ix_mch_children_person_id"), table_name="mch_children")
    op.drop_index(op.f("ix_mch_children_mother_id_number"), table_name="mch_children")
    op.drop_index(op.f("ix_mch_children_id_number"), table_name="mch_children")
    op.drop_index(op.f("ix_mch_children_district_code"), table_name="mch_children")
    op.drop_index("ix_mch_children_birth", table_name="mch_children")
    op.drop_table("mch_children")
    op.drop_index(op.f("ix_mch_case_follow_ups_pregnancy_id"), table_name="mch_case_follow_ups")
    op.drop_table("mch_case_follow_ups")
    op.drop_index(op.f("ix_mch_antenatal_visits_visit_date"), table_name="mch_antenatal_visits")
    op.drop_index("ix_mch_antenatal_visits_pregnancy", table_name="mch_antenatal_visits")
    op.drop_table("mch_antenatal_visits")
    op.drop_index(op.f("ix_mch_pregnancies_registered_on"), table_name="mch_pregnancies")
    op.drop_index(op.f("ix_mch_pregnancies_person_id"), table_name="mch_pregnancies")
    op.drop_index(op.f("ix_mch_pregnancies_next_follow_up_on"), table_name="mch_pregnancies")
    op.drop_index(op.f("ix_mch_pregnancies_id_number"), table_name="mch_pregnancies")
    op.drop_index(op.f("ix_mch_pregnancies_district_code"), table_name="mch_pregnancies")
    op.drop_index("ix_mch_pregnancies_delivered", table_name="mch_pregnancies")
    op.drop_table("mch_pregnancies")
