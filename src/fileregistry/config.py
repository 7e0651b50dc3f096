"""One typed Settings object; every option is an env var prefixed ``FILEREGISTRY_``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FILEREGISTRY_", extra="ignore")

    data_dir: Path = Field(Path("./fileregistry-data"), description="Holds the SQLite database and the mirror.")
    database_url: SecretStr | None = Field(
        None, description="SQLAlchemy URL; overrides the SQLite file in data_dir. postgresql:// URLs work."
    )
    mirror_dir: Path | None = Field(None, description="Local mirror root; defaults to <data_dir>/mirror.")
    sftp_key_dir: Path | None = Field(
        None,
        description="The only directory an SFTP config's key_path may name a private key file in (a relative "
        "key_path is taken relative to it); defaults to <data_dir>/keys.",
    )
    auto_migrate: bool = Field(True, description="Run Alembic migrations when the server starts.")
    log_level: str = "INFO"

    # SFTP timeouts (seconds) and tuning.
    sftp_connect_timeout: float = Field(15.0, gt=0, description="TCP connect + SSH handshake + auth.")
    sftp_op_timeout: float = Field(60.0, gt=0, description="Any single SFTP request (list, rename, ...).")
    sftp_download_timeout: float = Field(3600.0, gt=0, description="Whole download of one file.")
    sftp_scan_timeout: float = Field(3600.0, gt=0, description="Whole scan of one connection.")
    sftp_download_concurrency: int = Field(32, ge=1, le=512, description="Files downloaded at once per scan.")

    # HTTP
    db_pool_size: int = Field(10, ge=1)

    # Virtual file system uploads (appended by the VFS work).
    vfs_max_upload_bytes: int = Field(
        4 * 1024**3, ge=1, description="Largest upload body (after gzip decoding); above it: 413."
    )
    vfs_spool_dir: Path | None = Field(None, description="Where upload bodies are spooled; <data_dir>/spool.")
    vfs_max_reported_errors: int = Field(
        1000, ge=1, description="Errors and warnings stored per job; all are counted."
    )

    # Auth (users and tokens)
    access_token_ttl_hours: float = Field(24.0, gt=0, description="Lifetime of an API access token.")
    refresh_token_ttl_days: int = Field(
        365, ge=1, description="Default lifetime of a new refresh token (CLI --days and the bootstrap token)."
    )
    auth_max_failures: int = Field(
        10, ge=1, description="Failed token exchanges per client IP within the window before 429."
    )
    auth_failure_window_seconds: float = Field(300.0, gt=0, description="Window of the failure counter.")
    sftp_download_processes: int = Field(
        1, ge=1, le=8,
        description="OS processes sharing the downloads of a scan with >= 2,000 files to fetch (1: this one only).",
    )

    # Stored sources and the scheduler (issue 5).
    secret_key: SecretStr | None = Field(
        None,
        description="Fernet key(s) encrypting stored source secrets; comma-separated to rotate (the first "
        "encrypts, all decrypt). Unset: <data_dir>/secret.key, generated on first start.",
    )
    scheduler_enabled: bool = Field(True, description="Scan sources that have scan_interval_seconds.")
    scheduler_tick_seconds: float = Field(1.0, gt=0, description="How often the scheduler looks for due sources.")
    scheduler_jitter: float = Field(0.1, ge=0, le=0.5, description="Random +/- fraction added to each interval.")
    scheduler_max_backoff_seconds: float = Field(
        3600.0, gt=0, description="Longest wait before retrying a failing source (never shorter than its interval)."
    )
    scheduler_concurrency: int = Field(4, ge=1, le=64, description="Sources scanned at once by one process.")
    scan_lease_seconds: float = Field(
        60.0, ge=1, description="A scan's database lease; renewed while it runs, freed when a crashed holder's expires."
    )
    scan_wait_timeout: float = Field(
        300.0, ge=0, description="How long a requested scan waits for a running scan of the same connection (then 409)."
    )

    # Web UI (issue 6).
    ui_session_secret: SecretStr | None = Field(
        None, description="Signs the web UI's session cookies. Unset: a random key kept in <data_dir>/ui-session.key."
    )
    ui_session_hours: float = Field(12.0, gt=0, description="A web UI sign-in lasts this long, then asks again.")

    # Logs (issue 5).
    log_format: Literal["json", "text"] = Field(
        "json", description="json: one JSON object per line (for log shippers); text: one readable line."
    )

    @property
    def resolved_mirror_dir(self) -> Path:
        return (self.mirror_dir or self.data_dir / "mirror").resolve()

    @property
    def resolved_sftp_key_dir(self) -> Path:
        return (self.sftp_key_dir or self.data_dir / "keys").resolve()

    @property
    def resolved_database_url(self) -> str:
        """The async SQLAlchemy URL, with the driver filled in."""
        if self.database_url is None:
            return f"sqlite+aiosqlite:///{(self.data_dir / 'fileregistry.db').resolve()}"
        return to_async_url(self.database_url.get_secret_value())


def to_async_url(url: str) -> str:
    """Map plain ``postgresql://`` / ``sqlite://`` URLs to the async drivers we ship."""
    for prefix, repl in (
        ("postgresql+asyncpg://", None),
        ("postgresql+psycopg://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite+aiosqlite://", None),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(prefix):
            return url if repl is None else repl + url[len(prefix):]
    return url
