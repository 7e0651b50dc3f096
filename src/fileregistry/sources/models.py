"""Tables of the stored sources, the scan leases and app-wide metadata."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fileregistry.db import Base, UTCDateTime, utcnow


class Source(Base):
    """One stored SFTP source (the seed's config row, category = source name).

    Non-secret fields are kept in clear (listing, the UI and metrics need them without the key);
    ``password`` and ``private_key`` only inside ``secrets_encrypted`` (Fernet).
    """

    __tablename__ = "sftp_sources"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    connection_key: Mapped[str] = mapped_column(String(1024), index=True)
    config_json: Mapped[str] = mapped_column(Text)  # SFTPConfig without password / private_key
    secrets_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    scan_interval_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Scheduler state. next_scan_at is also the claim: a process that moves it forward owns the slot.
    next_scan_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ScanLease(Base):
    """Held while a scan of one connection runs, by any process: scans never overlap."""

    __tablename__ = "sftp_scan_leases"

    connection_key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AppMeta(Base):
    """Small app-wide facts (the secret-key check token)."""

    __tablename__ = "app_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
