"""Virtual file systems, entries, durable jobs and job errors.

Revision ID: 0003_vfs_jobs
Revises: 0002_auth
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0003_vfs_jobs"
down_revision = "0002_auth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # placeholder in the revision chain; its tables are added by the work that owns it


def downgrade() -> None:
    pass
