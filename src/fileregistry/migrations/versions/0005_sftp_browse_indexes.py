"""Indexes for browsing a source's registry across states (the web UI): by mtime, size and name.

Revision ID: 0005_sftp_browse_indexes
Revises: 0004_sources
"""

from alembic import op

revision = "0005_sftp_browse_indexes"
down_revision = "0004_sources"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_sftp_files_key_mtime": ["connection_key", "remote_mtime", "id"],
    "ix_sftp_files_key_size": ["connection_key", "size", "id"],
    "ix_sftp_files_key_name": ["connection_key", "name", "id"],
    "ix_sftp_files_key_state_mtime": ["connection_key", "state", "remote_mtime", "id"],
    "ix_sftp_files_key_state_size": ["connection_key", "state", "size", "id"],
}


def upgrade() -> None:
    for name, cols in INDEXES.items():
        op.create_index(name, "sftp_files", cols)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="sftp_files")
