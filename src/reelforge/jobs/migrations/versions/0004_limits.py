"""Limits and quotas: per-key limits, credits, fair scheduling, retention; shared secrets.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from reelforge.jobs.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("credits_reserved", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("video_expired_at", UTCDateTime(), nullable=True))
        batch.create_index("ix_jobs_owner_status", ["owner", "status"])
        batch.create_index("ix_jobs_video_token", ["video_token"])
        batch.create_index("ix_jobs_retention", ["status", "completed_at"])
    with op.batch_alter_table("api_keys") as batch:
        for name in ("rpm", "read_rpm", "max_queued", "max_running", "priority"):
            batch.add_column(sa.Column(name, sa.Integer(), nullable=True))
    op.create_table(
        "key_usage",
        sa.Column("owner", sa.String(100), primary_key=True),
        sa.Column("balance", sa.BigInteger(), nullable=True),
        sa.Column("reserved", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("spent", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("virtual_time", sa.Float(), nullable=False, server_default="0"),
        sa.Column("jobs_created", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.create_table(
        "service_secrets",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "locks",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("locks")
    op.drop_table("service_secrets")
    op.drop_table("key_usage")
    with op.batch_alter_table("api_keys") as batch:
        for name in ("priority", "max_running", "max_queued", "read_rpm", "rpm"):
            batch.drop_column(name)
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_retention")
        batch.drop_index("ix_jobs_video_token")
        batch.drop_index("ix_jobs_owner_status")
        batch.drop_column("video_expired_at")
        batch.drop_column("credits_reserved")
