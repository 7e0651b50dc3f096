"""Virtual file systems, entries, durable jobs and job errors.

Revision ID: 0003_vfs_jobs
Revises: 0002_auth
"""

import sqlalchemy as sa
from alembic import op

from fileregistry.db import UTCDateTime

revision = "0003_vfs_jobs"
down_revision = "0002_auth"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Byte order on both backends (SQLite BINARY = PostgreSQL "C"): same paging order, faster compares.
KEY = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "vfs_filesystems",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("delimiter", sa.String(8), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("name", name="uq_vfs_filesystems_name"),
    )
    op.create_table(
        "vfs_entries",
        sa.Column("id", ID, primary_key=True),
        # No foreign key on purpose: its per-row check (a trigger on PostgreSQL) halved the bulk
        # load rate. Entries are deleted with their file system by the application, under a lock
        # on the file system row (vfs.store.delete_fs), and a replace locks that row too.
        sa.Column("fs_id", ID, nullable=False),
        sa.Column("parent_path", KEY, nullable=False),
        sa.Column("name", KEY, nullable=False),
        sa.Column("is_directory", sa.Boolean(), nullable=False),
        sa.Column("implied", sa.Boolean(), nullable=False),
        sa.Column("size_in_bytes", sa.BigInteger(), nullable=True),
        sa.Column("ts_last_modified", sa.BigInteger(), nullable=True),
        sa.Column("ts_last_accessed", sa.BigInteger(), nullable=True),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.Column("group_name", sa.Text(), nullable=True),
        sa.Column("permission_bits", sa.Integer(), nullable=True),
        sa.Column("storage_type", sa.SmallInteger(), nullable=True),
        sa.UniqueConstraint("fs_id", "parent_path", "name", name="uq_vfs_entries_fs_parent_name"),
    )
    op.create_table(
        "jobs",
        sa.Column("id", ID, primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("fs_id", ID, nullable=True),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("msg", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_jobs_phase_id", "jobs", ["phase", "id"])
    op.create_table(
        "job_errors",
        sa.Column("id", ID, primary_key=True),
        sa.Column("job_id", ID, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("field", sa.String(64), nullable=True),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
    )
    op.create_index("ix_job_errors_job_id_id", "job_errors", ["job_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_job_errors_job_id_id", "job_errors")
    op.drop_table("job_errors")
    op.drop_index("ix_jobs_phase_id", "jobs")
    op.drop_table("jobs")
    op.drop_table("vfs_entries")
    op.drop_table("vfs_filesystems")
