"""One typed Settings object; every option is an env var prefixed ``FILEREGISTRY_``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FILEREGISTRY_", extra="ignore")

    data_dir: Path = Field(Path("./fileregistry-data"), description="Holds the SQLite database and the mirror.")
    database_url: SecretStr | None = Field(
        None, description="SQLAlchemy URL; overrides the SQLite file in data_dir. postgresql:// URLs work."
    )
    mirror_dir: Path | None = Field(None, description="Local mirror root; defaults to <data_dir>/mirror.")
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

    @property
    def resolved_mirror_dir(self) -> Path:
        return (self.mirror_dir or self.data_dir / "mirror").resolve()

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
