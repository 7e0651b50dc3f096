"""Users, refresh tokens, API access tokens.

Revision ID: 0002_auth
Revises: 0001_sftp
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0002_auth"
down_revision = "0001_sftp"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # placeholder in the revision chain; its tables are added by the work that owns it


def downgrade() -> None:
    pass
