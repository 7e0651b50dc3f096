"""Registry tables for the SFTP monitor."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fileregistry.db import Base, UTCDateTime, utcnow


class TrackedFile(Base):
    """One row per tracked file of one connection."""

    __tablename__ = "sftp_files"
    __table_args__ = (
        UniqueConstraint("connection_key", "state", "name", name="uq_sftp_files_key_state_name"),
        Index("ix_sftp_files_key_state", "connection_key", "state"),
        # Browsing one source across states (web UI), keyset-paged by these orders (0005).
        Index("ix_sftp_files_key_mtime", "connection_key", "remote_mtime", "id"),
        Index("ix_sftp_files_key_size", "connection_key", "size", "id"),
        Index("ix_sftp_files_key_name", "connection_key", "name", "id"),
        Index("ix_sftp_files_key_state_mtime", "connection_key", "state", "remote_mtime", "id"),
        Index("ix_sftp_files_key_state_size", "connection_key", "state", "size", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    connection_key: Mapped[str] = mapped_column(String(1024))
    state: Mapped[str] = mapped_column(String(16))  # new | processing | completed | error
    name: Mapped[str] = mapped_column(String(1024))  # current file name in its state directory
    original_name: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    remote_mtime: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_changed: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class FileEvent(Base):
    """Every state change of a tracked file (from_state is NULL when first registered)."""

    __tablename__ = "sftp_file_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    file_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("sftp_files.id", ondelete="CASCADE"), index=True
    )
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str] = mapped_column(String(16))
    from_name: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    to_name: Mapped[str] = mapped_column(String(1024))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ScanRecord(Base):
    """Scan history of one connection."""

    __tablename__ = "sftp_scans"
    __table_args__ = (Index("ix_sftp_scans_key_started", "connection_key", "started_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    connection_key: Mapped[str] = mapped_column(String(1024))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration: Mapped[float] = mapped_column(Float, default=0.0)
    listed: Mapped[int] = mapped_column(Integer, default=0)
    new_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    # Tracked 'new' files no longer on the server, unregistered by this scan (0006).
    removed_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    bytes_downloaded: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    trigger: Mapped[str | None] = mapped_column(String(16), nullable=True)  # api | schedule | cli | ui


class KnownHostKey(Base):
    """Trust-on-first-use host keys (OpenSSH ``accept-new``), one per host:port."""

    __tablename__ = "sftp_known_hosts"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    port: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_key: Mapped[str] = mapped_column(Text)  # OpenSSH public key line
    fingerprint: Mapped[str] = mapped_column(String(128))  # SHA256:...
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
