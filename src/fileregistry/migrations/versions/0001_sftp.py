"""SFTP monitor registry, events, scan history, known host keys.

Revision ID: 0001_sftp
Revises:
"""

import sqlalchemy as sa
from alembic import op

from fileregistry.db import UTCDateTime

revision = "0001_sftp"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sftp_files",
        sa.Column("id", ID, primary_key=True),
        sa.Column("connection_key", sa.String(1024), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("name", sa.String(1024), nullable=False),
        sa.Column("original_name", sa.String(1024), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("remote_mtime", UTCDateTime(), nullable=True),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_changed", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("connection_key", "state", "name", name="uq_sftp_files_key_state_name"),
    )
    op.create_index("ix_sftp_files_key_state", "sftp_files", ["connection_key", "state"])
    op.create_table(
        "sftp_file_events",
        sa.Column("id", ID, primary_key=True),
        sa.Column("file_id", ID, sa.ForeignKey("sftp_files.id", ondelete="CASCADE"), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("from_name", sa.String(1024), nullable=True),
        sa.Column("to_name", sa.String(1024), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_sftp_file_events_file_id", "sftp_file_events", ["file_id"])
    op.create_table(
        "sftp_scans",
        sa.Column("id", ID, primary_key=True),
        sa.Column("connection_key", sa.String(1024), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("listed", sa.Integer(), nullable=False),
        sa.Column("new_count", sa.Integer(), nullable=False),
        sa.Column("updated_count", sa.Integer(), nullable=False),
        sa.Column("failed_count", sa.Integer(), nullable=False),
        sa.Column("bytes_downloaded", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_sftp_scans_key_started", "sftp_scans", ["connection_key", "started_at"])
    op.create_table(
        "sftp_known_hosts",
        sa.Column("host", sa.String(255), primary_key=True),
        sa.Column("port", sa.Integer(), primary_key=True),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sftp_known_hosts")
    op.drop_index("ix_sftp_scans_key_started", "sftp_scans")
    op.drop_table("sftp_scans")
    op.drop_index("ix_sftp_file_events_file_id", "sftp_file_events")
    op.drop_table("sftp_file_events")
    op.drop_index("ix_sftp_files_key_state", "sftp_files")
    op.drop_table("sftp_files")
