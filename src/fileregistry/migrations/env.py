"""Alembic environment. Always driven through fileregistry.migrate with a live connection."""

from __future__ import annotations

from alembic import context

from fileregistry.models import Base  # noqa: F401  (imports every model module)

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover
    raise RuntimeError("run migrations via 'fileregistry db upgrade'")

context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
