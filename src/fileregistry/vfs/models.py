"""Virtual file system tables.

An entry is keyed by ``(fs_id, parent_path, name)``. ``parent_path`` is the normalised path of
the parent directory: the components joined by the file system's delimiter, without leading or
trailing delimiters (``""`` is the root). Timestamps are stored as integer UTC epoch seconds so
the bulk paths never build ``datetime`` objects.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from fileregistry.db import Base, UTCDateTime

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Byte order on both backends (SQLite BINARY = PostgreSQL "C"): same paging order, faster compares.
KEY = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


class FileSystem(Base):
    __tablename__ = "vfs_filesystems"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255), unique=True)
    delimiter: Mapped[str] = mapped_column(sa.String(8), default="/")
    created_at = mapped_column(UTCDateTime(), nullable=False)


class Entry(Base):
    __tablename__ = "vfs_entries"
    __table_args__ = (
        # Children paging (keyset on name) and the replace-by-diff join both use this index.
        sa.UniqueConstraint("fs_id", "parent_path", "name", name="uq_vfs_entries_fs_parent_name"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    # No foreign key (bulk load speed); delete_fs removes entries under a lock on the fs row.
    fs_id: Mapped[int] = mapped_column(ID)
    parent_path: Mapped[str] = mapped_column(KEY)
    name: Mapped[str] = mapped_column(KEY)
    is_directory: Mapped[bool] = mapped_column(sa.Boolean())
    implied: Mapped[bool] = mapped_column(sa.Boolean(), default=False)
    size_in_bytes: Mapped[int | None] = mapped_column(sa.BigInteger(), nullable=True)
    ts_last_modified: Mapped[int | None] = mapped_column(sa.BigInteger(), nullable=True)
    ts_last_accessed: Mapped[int | None] = mapped_column(sa.BigInteger(), nullable=True)
    owner: Mapped[str | None] = mapped_column(sa.Text(), nullable=True)
    group_name: Mapped[str | None] = mapped_column(sa.Text(), nullable=True)
    permission_bits: Mapped[int | None] = mapped_column(sa.Integer(), nullable=True)
    storage_type: Mapped[int | None] = mapped_column(sa.SmallInteger(), nullable=True)


filesystems = FileSystem.__table__
entries = Entry.__table__
