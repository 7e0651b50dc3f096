"""Scan history: how many tracked ``new`` files a scan found gone from the server and unregistered.

Revision ID: 0006_sftp_scan_removed
Revises: 0005_sftp_browse_indexes
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_sftp_scan_removed"
down_revision = "0005_sftp_browse_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sftp_scans") as batch:
        batch.add_column(sa.Column("removed_count", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("sftp_scans") as batch:
        batch.drop_column("removed_count")
