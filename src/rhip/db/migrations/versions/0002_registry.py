"""Registry: districts, institutions and aliases, departments, channels, hotline categories,
telemedicine centres, metropolitan-area cities, registry_meta.

Revision ID: 0002_registry
Revises: 0001_security
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_registry"
down_revision = "0001_security"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "districts",
        sa.Column("code", sa.String(6), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("short_name", sa.String(16), nullable=False),
        sa.Column("platform_code", sa.String(16), nullable=False),
        sa.Column("synthetic_code", sa.Boolean(), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_districts"),
        sa.UniqueConstraint("name", name="uq_districts_name"),
    )
    op.create_table(
        "metro_cities",
        sa.Column("code", sa.String(6), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("province", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(64)),
        sa.Column("aliases", sa.JSON(), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_metro_cities"),
        sa.UniqueConstraint("name", name="uq_metro_cities_name"),
    )
    op.create_table(
        "institutions",
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("name_key", sa.String(128), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("ownership", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column(
            "district_code",
            sa.String(6),
            sa.ForeignKey("districts.code", name="fk_institutions_district_code_districts"),
        ),
        sa.Column("city", sa.String(32), nullable=False),
        sa.Column("tertiary", sa.Boolean(), nullable=False),
        sa.Column(
            "parent_code",
            sa.String(16),
            sa.ForeignKey("institutions.code", name="fk_institutions_parent_code_institutions"),
        ),
        sa.Column("upload_route", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("joined_on", sa.Date()),
        sa.Column("left_on", sa.Date()),
        sa.Column("note", sa.String(255)),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_institutions"),
        sa.UniqueConstraint("name", name="uq_institutions_name"),
        sa.UniqueConstraint("name_key", name="uq_institutions_name_key"),
    )
    op.create_index("ix_institutions_level", "institutions", ["level"])
    op.create_index("ix_institutions_kind", "institutions", ["kind"])
    op.create_index("ix_institutions_district_code", "institutions", ["district_code"])
    op.create_table(
        "institution_aliases",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "institution_code",
            sa.String(16),
            sa.ForeignKey(
                "institutions.code",
                name="fk_institution_aliases_institution_code_institutions",
                ondelete="CASCADE",
            ),
            nullable=False,
        ),
        sa.Column("alias", sa.String(128), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_institution_aliases"),
        sa.UniqueConstraint("alias", name="uq_institution_aliases_alias"),
        sa.UniqueConstraint("key", name="uq_institution_aliases_key"),
    )
    op.create_index("ix_institution_aliases_institution_code", "institution_aliases", ["institution_code"])
    op.create_table(
        "departments",
        sa.Column("code", sa.String(8), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column(
            "parent_code",
            sa.String(8),
            sa.ForeignKey("departments.code", name="fk_departments_parent_code_departments"),
        ),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_departments"),
    )
    op.create_table(
        "channels",
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("group", sa.String(32), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_channels"),
        sa.UniqueConstraint("name", name="uq_channels_name"),
    )
    op.create_index("ix_channels_group", "channels", ["group"])
    op.create_table(
        "channel_aliases",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "channel_code",
            sa.String(32),
            sa.ForeignKey(
                "channels.code", name="fk_channel_aliases_channel_code_channels", ondelete="CASCADE"
            ),
            nullable=False,
        ),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_channel_aliases"),
        sa.UniqueConstraint("alias", name="uq_channel_aliases_alias"),
        sa.UniqueConstraint("key", name="uq_channel_aliases_key"),
    )
    op.create_index("ix_channel_aliases_channel_code", "channel_aliases", ["channel_code"])
    op.create_table(
        "hotline_categories",
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("unit", sa.String(8), nullable=False),
        sa.Column("aliases", sa.JSON(), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_hotline_categories"),
        sa.UniqueConstraint("name", name="uq_hotline_categories_name"),
    )
    op.create_table(
        "telemed_centres",
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("centre_name", sa.String(64), nullable=False),
        sa.Column(
            "hub_code",
            sa.String(16),
            sa.ForeignKey("institutions.code", name="fk_telemed_centres_hub_code_institutions"),
            nullable=False,
        ),
        sa.Column("started_year", sa.Integer(), nullable=False),
        sa.Column("aliases", sa.JSON(), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_telemed_centres"),
        sa.UniqueConstraint("name", name="uq_telemed_centres_name"),
    )
    op.create_table(
        "registry_meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_registry_meta"),
    )


def downgrade() -> None:
    op.drop_table("registry_meta")
    op.drop_table("telemed_centres")
    op.drop_table("hotline_categories")
    op.drop_index("ix_channel_aliases_channel_code", table_name="channel_aliases")
    op.drop_table("channel_aliases")
    op.drop_index("ix_channels_group", table_name="channels")
    op.drop_table("channels")
    op.drop_table("departments")
    op.drop_index("ix_institution_aliases_institution_code", table_name="institution_aliases")
    op.drop_table("institution_aliases")
    op.drop_index("ix_institutions_district_code", table_name="institutions")
    op.drop_index("ix_institutions_kind", table_name="institutions")
    op.drop_index("ix_institutions_level", table_name="institutions")
    op.drop_table("institutions")
    op.drop_table("metro_cities")
    op.drop_table("districts")
