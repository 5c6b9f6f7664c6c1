"""Lifecycle: revisions, cancellation, listing, webhooks.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from reelforge.jobs.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("cancel_requested_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("webhook_url", sa.String(2048), nullable=True))
        batch.create_index("ix_jobs_owner_created", ["owner", "created_at", "id"])
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("webhook_url", sa.String(2048), nullable=True))
        batch.add_column(sa.Column("webhook_secret", sa.String(100), nullable=True))
        batch.add_column(sa.Column("webhook_secret_previous", sa.String(100), nullable=True))
        batch.add_column(sa.Column("webhook_secret_rotated_at", UTCDateTime(), nullable=True))
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("job_id", sa.String(200), nullable=False),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("flavour", sa.String(20), nullable=False, server_default="aimlapi"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_webhook_deliveries_job_id", "webhook_deliveries", ["job_id"])
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"]
    )
    op.create_table(
        "webhook_disabled",
        sa.Column("owner", sa.String(100), primary_key=True),
        sa.Column("url", sa.String(2048), primary_key=True),
        sa.Column("disabled_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("webhook_disabled")
    op.drop_index("ix_webhook_deliveries_due", "webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_job_id", "webhook_deliveries")
    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("webhook_secret_rotated_at")
        batch.drop_column("webhook_secret_previous")
        batch.drop_column("webhook_secret")
        batch.drop_column("webhook_url")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_owner_created")
        batch.drop_column("webhook_url")
        batch.drop_column("cancel_requested_at")
        batch.drop_column("revision")
