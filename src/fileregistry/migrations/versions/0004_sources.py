"""Stored SFTP sources, scan leases, app metadata; the trigger of each scan.

Revision ID: 0004_sources
Revises: 0003_vfs_jobs
"""

import sqlalchemy as sa
from alembic import op

from fileregistry.db import UTCDateTime

revision = "0004_sources"
down_revision = "0003_vfs_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sftp_sources",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("connection_key", sa.String(1024), nullable=False),
        sa.Column("config_json", sa.Text(), nullable=False),
        sa.Column("secrets_encrypted", sa.Text(), nullable=True),
        sa.Column("scan_interval_seconds", sa.Integer(), nullable=True),
        sa.Column("next_scan_at", UTCDateTime(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_sftp_sources_connection_key", "sftp_sources", ["connection_key"])
    op.create_table(
        "sftp_scan_leases",
        sa.Column("connection_key", sa.String(1024), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("acquired_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "app_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    with op.batch_alter_table("sftp_scans") as batch:
        batch.add_column(sa.Column("trigger", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sftp_scans") as batch:
        batch.drop_column("trigger")
    op.drop_table("app_meta")
    op.drop_table("sftp_scan_leases")
    op.drop_index("ix_sftp_sources_connection_key", table_name="sftp_sources")
    op.drop_table("sftp_sources")
