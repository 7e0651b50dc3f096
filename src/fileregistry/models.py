"""Imports every model module so that ``Base.metadata`` is complete (Alembic, tests)."""

from fileregistry.auth import models as auth_models  # noqa: F401
from fileregistry.db import Base
from fileregistry.jobs import models as jobs_models  # noqa: F401
from fileregistry.sftp import models as sftp_models  # noqa: F401
from fileregistry.sources import models as sources_models  # noqa: F401
from fileregistry.vfs import models as vfs_models  # noqa: F401

__all__ = ["Base"]
