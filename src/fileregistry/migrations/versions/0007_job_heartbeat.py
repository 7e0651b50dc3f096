"""Job leases: who runs a ``started`` job (``owner``) and when it last said so (``heartbeat_at``).

A job is taken over (re-run or failed) only when its heartbeat is older than the lease, or its
owner is a process on this host that is gone; ``job_errors.line`` becomes a 64-bit integer.

Revision ID: 0007_job_heartbeat
Revises: 0006_sftp_scan_removed
"""

import sqlalchemy as sa
from alembic import op

from fileregistry.db import UTCDateTime

revision = "0007_job_heartbeat"
down_revision = "0006_sftp_scan_removed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("owner", sa.String(128), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("job_errors") as batch:
        batch.alter_column("line", existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("job_errors") as batch:
        batch.alter_column("line", existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=True)
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("owner")
