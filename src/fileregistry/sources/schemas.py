"""Wire shapes of the config store (``/generic/sftp-config``)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from fileregistry.sftp.parse import REDACTED  # noqa: F401 - one placeholder for both

SECRET_FIELDS = ("password", "private_key")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
NAME_RULE = "1-128 characters: letters, digits, '.', '_' or '-', starting with a letter or digit"


class SourceView(BaseModel):
    """One stored config, as the seed's config table row: ``category`` is the source name."""

    category: str = Field(description="The source name (the seed's config category).")
    source: str = Field(description="The source name again, for readers that expect it by that name.")
    config: dict[str, Any] = Field(
        description=f"The SFTPConfig; password and private_key read {REDACTED!r} unless include_secrets=true."
    )
    scan_interval_seconds: int | None
    created_at: datetime
    updated_at: datetime


class LastScan(BaseModel):
    started_at: datetime
    duration: float
    error: str | None
    listed: int
    new_count: int
    failed_count: int
    bytes_downloaded: int
    trigger: str | None


class SourceSummary(BaseModel):
    """What the sources page and the metrics show about one source."""

    name: str
    connection_key: str
    host: str
    port: int
    username: str
    remote_path: str
    scan_interval_seconds: int | None
    counts: dict[str, int]
    oldest_new_at: datetime | None
    last_scan: LastScan | None
    consecutive_failures: int
    next_scan_at: datetime | None
    last_error: str | None

    @property
    def failing(self) -> bool:
        return self.consecutive_failures > 0 or bool(self.last_scan and self.last_scan.error)
