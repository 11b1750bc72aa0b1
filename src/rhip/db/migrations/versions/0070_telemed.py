"""Telemedicine: connections, requests (ServiceRequest + Task) and their history, reports, imaging
studies and series, attachments, specimens, members, events, collected reports, TAT limits, feed state.

Revision ID: 0070_telemed
Revises: 0002_registry
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import rhip.db.base

revision = "0070_telemed"
down_revision = "0002_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "telemed_feed_state",
        sa.Column("pacs", sa.String(length=256), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pacs", name=op.f("pk_telemed_feed_state")),
    )
    op.create_table(
        "telemed_collected",
        sa.Column("centre_code", sa.String(length=16), nullable=False),
        sa.Column("institution_code", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["centre_code"],
            ["telemed_centres.code"],
            name=op.f("fk_telemed_collected_centre_code_telemed_centres"),
        ),
        sa.ForeignKeyConstraint(
            ["institution_code"],
            ["institutions.code"],
            name=op.f("fk_telemed_collected_institution_code_institutions"),
        ),
        sa.PrimaryKeyConstraint(
            "centre_code", "institution_code", "day", "kind", name=op.f("pk_telemed_collected")
        ),
    )
    op.create_table(
        "telemed_connections",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("centre_code", sa.String(length=16), nullable=False),
        sa.Column("institution_code", sa.String(length=32), nullable=True),
        sa.Column("site_key", sa.String(length=160), nullable=False),
        sa.Column("site_name", sa.String(length=128), nullable=False),
        sa.Column("city", sa.String(length=32), nullable=False),
        sa.Column("district", sa.String(length=32), nullable=True),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("tertiary", sa.Boolean(), nullable=False),
        sa.Column("local", sa.Boolean(), nullable=False),
        sa.Column("connected_on", sa.Date(), nullable=False),
        sa.Column("disconnected_on", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "category IN ('二级以上', '社区', '都市圈城市', '对外帮扶', '其他')",
            name=op.f("ck_telemed_connections_category"),
        ),
        sa.ForeignKeyConstraint(
            ["centre_code"],
            ["telemed_centres.code"],
            name=op.f("fk_telemed_connections_centre_code_telemed_centres"),
        ),
        sa.ForeignKeyConstraint(
            ["institution_code"],
            ["institutions.code"],
            name=op.f("fk_telemed_connections_institution_code_institutions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_connections")),
        sa.UniqueConstraint("centre_code", "site_key", name="uq_telemed_connections_site"),
    )
    op.create_table(
        "telemed_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("centre_code", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("title", sa.String(length=128), nullable=False),
        sa.Column("held_at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("host", sa.String(length=64), nullable=True),
        sa.Column("attendees", sa.Integer(), nullable=False),
        sa.Column("case_ids", sa.JSON(), nullable=True),
        sa.CheckConstraint("kind IN ('meeting', 'lecture')", name=op.f("ck_telemed_events_kind")),
        sa.ForeignKeyConstraint(
            ["centre_code"],
            ["telemed_centres.code"],
            name=op.f("fk_telemed_events_centre_code_telemed_centres"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_events")),
    )
    op.create_table(
        "telemed_members",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("centre_code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("institution_code", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("specialty", sa.String(length=64), nullable=True),
        sa.Column("joined_on", sa.Date(), nullable=False),
        sa.CheckConstraint("role IN ('expert', 'doctor')", name=op.f("ck_telemed_members_role")),
        sa.ForeignKeyConstraint(
            ["centre_code"],
            ["telemed_centres.code"],
            name=op.f("fk_telemed_members_centre_code_telemed_centres"),
        ),
        sa.ForeignKeyConstraint(
            ["institution_code"],
            ["institutions.code"],
            name=op.f("fk_telemed_members_institution_code_institutions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_members")),
        sa.UniqueConstraint("centre_code", "name", "institution_code", name="uq_telemed_members_person"),
    )
    op.create_table(
        "telemed_requests",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("centre_code", sa.String(length=16), nullable=False),
        sa.Column("service_type", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("requester_code", sa.String(length=32), nullable=False),
        sa.Column("requester_name", sa.String(length=64), nullable=True),
        sa.Column("performer_code", sa.String(length=32), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=True),
        sa.Column("patient_id_number", sa.String(length=18), nullable=True),
        sa.Column("patient_local_id", sa.String(length=64), nullable=True),
        sa.Column("patient_name", sa.String(length=64), nullable=True),
        sa.Column("patient_sex", sa.String(length=1), nullable=True),
        sa.Column("patient_birth_date", sa.Date(), nullable=True),
        sa.Column("person_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("scheduled_at", rhip.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.String(length=256), nullable=True),
        sa.Column("assignee", sa.String(length=64), nullable=True),
        sa.Column("requested_at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", rhip.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("started_at", rhip.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", rhip.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("notified_at", rhip.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "priority IN ('routine', 'urgent', 'stat')", name=op.f("ck_telemed_requests_priority")
        ),
        sa.CheckConstraint(
            "status IN ('requested', 'accepted', 'in_progress', 'completed', 'rejected', 'cancelled')",
            name=op.f("ck_telemed_requests_status"),
        ),
        sa.ForeignKeyConstraint(
            ["centre_code"],
            ["telemed_centres.code"],
            name=op.f("fk_telemed_requests_centre_code_telemed_centres"),
        ),
        sa.ForeignKeyConstraint(
            ["performer_code"],
            ["institutions.code"],
            name=op.f("fk_telemed_requests_performer_code_institutions"),
        ),
        sa.ForeignKeyConstraint(
            ["requester_code"],
            ["institutions.code"],
            name=op.f("fk_telemed_requests_requester_code_institutions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_requests")),
    )
    op.create_index(
        "ix_telemed_connections_institution", "telemed_connections", ["institution_code", "centre_code"]
    )
    with op.batch_alter_table("telemed_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_telemed_requests_open",
            ["centre_code", "requested_at", "id"],
            unique=False,
            sqlite_where=sa.text("status IN ('requested', 'accepted', 'in_progress')"),
            postgresql_where=sa.text("status IN ('requested', 'accepted', 'in_progress')"),
        )
        batch_op.create_index("ix_telemed_requests_month", ["requested_at"], unique=False)
        batch_op.create_index(
            "ix_telemed_requests_requester", ["requester_code", "requested_at"], unique=False
        )
        batch_op.create_index(
            "ix_telemed_requests_worklist", ["centre_code", "status", "requested_at"], unique=False
        )

    op.create_table(
        "telemed_tat_limits",
        sa.Column("centre_code", sa.String(length=16), nullable=False),
        sa.Column("service_type", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=32), nullable=False),
        sa.Column("limit_minutes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["centre_code"],
            ["telemed_centres.code"],
            name=op.f("fk_telemed_tat_limits_centre_code_telemed_centres"),
        ),
        sa.PrimaryKeyConstraint("centre_code", "service_type", name=op.f("pk_telemed_tat_limits")),
    )
    op.create_table(
        "telemed_attachments",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("request_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=True),
        sa.Column("created_at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["telemed_requests.id"],
            name=op.f("fk_telemed_attachments_request_id_telemed_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_attachments")),
    )
    with op.batch_alter_table("telemed_attachments", schema=None) as batch_op:
        batch_op.create_index("ix_telemed_attachments_request", ["request_id"], unique=False)

    op.create_table(
        "telemed_history",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("request_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.String(length=256), nullable=True),
        sa.Column("at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["telemed_requests.id"],
            name=op.f("fk_telemed_history_request_id_telemed_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_history")),
    )
    with op.batch_alter_table("telemed_history", schema=None) as batch_op:
        batch_op.create_index("ix_telemed_history_request", ["request_id"], unique=False)

    op.create_table(
        "telemed_reports",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("request_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column("conclusion", sa.Text(), nullable=False),
        sa.Column("critical", sa.Boolean(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("issued_at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["telemed_requests.id"],
            name=op.f("fk_telemed_reports_request_id_telemed_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_reports")),
        sa.UniqueConstraint("request_id", name=op.f("uq_telemed_reports_request_id")),
    )
    with op.batch_alter_table("telemed_reports", schema=None) as batch_op:
        batch_op.create_index("ix_telemed_reports_issued", ["issued_at"], unique=False)

    op.create_table(
        "telemed_specimens",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("barcode", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("specimen_type", sa.String(length=32), nullable=False),
        sa.Column("from_code", sa.String(length=32), nullable=False),
        sa.Column("to_code", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_reason", sa.String(length=256), nullable=True),
        sa.Column("collected_at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("shipped_at", rhip.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("received_at", rhip.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("tested_at", rhip.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.Column("reported_at", rhip.db.base.UtcDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('collected', 'shipped', 'received', 'tested', 'reported', 'rejected')",
            name=op.f("ck_telemed_specimens_state"),
        ),
        sa.ForeignKeyConstraint(
            ["from_code"], ["institutions.code"], name=op.f("fk_telemed_specimens_from_code_institutions")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["telemed_requests.id"],
            name=op.f("fk_telemed_specimens_request_id_telemed_requests"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["to_code"], ["institutions.code"], name=op.f("fk_telemed_specimens_to_code_institutions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_specimens")),
        sa.UniqueConstraint("barcode", name=op.f("uq_telemed_specimens_barcode")),
    )
    with op.batch_alter_table("telemed_specimens", schema=None) as batch_op:
        batch_op.create_index("ix_telemed_specimens_collected", ["collected_at"], unique=False)

    op.create_table(
        "telemed_studies",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("orthanc_id", sa.String(length=64), nullable=True),
        sa.Column("institution_code", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=128), nullable=True),
        sa.Column("series_count", sa.Integer(), nullable=False),
        sa.Column("instance_count", sa.Integer(), nullable=False),
        sa.Column("performed_at", rhip.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["institution_code"],
            ["institutions.code"],
            name=op.f("fk_telemed_studies_institution_code_institutions"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["telemed_requests.id"],
            name=op.f("fk_telemed_studies_request_id_telemed_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_studies")),
        sa.UniqueConstraint("orthanc_id", name=op.f("uq_telemed_studies_orthanc_id")),
        sa.UniqueConstraint("study_uid", name=op.f("uq_telemed_studies_study_uid")),
    )
    with op.batch_alter_table("telemed_studies", schema=None) as batch_op:
        batch_op.create_index("ix_telemed_studies_performed", ["performed_at"], unique=False)

    op.create_table(
        "telemed_series",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("study_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("series_uid", sa.String(length=64), nullable=False),
        sa.Column("orthanc_id", sa.String(length=64), nullable=True),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("number", sa.Integer(), nullable=True),
        sa.Column("description", sa.String(length=128), nullable=True),
        sa.Column("instance_count", sa.Integer(), nullable=False),
        sa.Column("preview_instance", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["telemed_studies.id"],
            name=op.f("fk_telemed_series_study_id_telemed_studies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemed_series")),
        sa.UniqueConstraint("series_uid", name=op.f("uq_telemed_series_series_uid")),
    )
    with op.batch_alter_table("telemed_series", schema=None) as batch_op:
        batch_op.create_index("ix_telemed_series_study", ["study_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("telemed_series", schema=None) as batch_op:
        batch_op.drop_index("ix_telemed_series_study")

    op.drop_table("telemed_series")
    with op.batch_alter_table("telemed_studies", schema=None) as batch_op:
        batch_op.drop_index("ix_telemed_studies_performed")

    op.drop_table("telemed_studies")
    with op.batch_alter_table("telemed_specimens", schema=None) as batch_op:
        batch_op.drop_index("ix_telemed_specimens_collected")

    op.drop_table("telemed_specimens")
    with op.batch_alter_table("telemed_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_telemed_reports_issued")

    op.drop_table("telemed_reports")
    with op.batch_alter_table("telemed_history", schema=None) as batch_op:
        batch_op.drop_index("ix_telemed_history_request")

    op.drop_table("telemed_history")
    with op.batch_alter_table("telemed_attachments", schema=None) as batch_op:
        batch_op.drop_index("ix_telemed_attachments_request")

    op.drop_table("telemed_attachments")
    op.drop_table("telemed_tat_limits")
    with op.batch_alter_table("telemed_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_telemed_requests_worklist")
        batch_op.drop_index("ix_telemed_requests_requester")
        batch_op.drop_index("ix_telemed_requests_open")
        batch_op.drop_index("ix_telemed_requests_month")

    op.drop_table("telemed_requests")
    op.drop_table("telemed_members")
    op.drop_table("telemed_events")
    op.drop_index("ix_telemed_connections_institution", table_name="telemed_connections")
    op.drop_table("telemed_connections")
    op.drop_table("telemed_collected")
    op.drop_table("telemed_feed_state")
