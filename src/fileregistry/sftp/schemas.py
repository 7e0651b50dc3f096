"""Wire shapes of the /sftp API (the seed's field names and shapes are a contract)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class SFTPConfig(BaseModel):
    """How to reach one SFTP landing zone. One auth method at least: password, key_path or private_key."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)

    host: str = Field(min_length=1, max_length=255, description="SFTP server host name or IP address.")
    username: str = Field(min_length=1, max_length=255)
    password: SecretStr | None = Field(None, description="Password (never echoed or logged).")
    key_path: str | None = Field(None, description="Path, on the fileregistry host, of a private key file.")
    private_key: SecretStr | None = Field(
        None, description="Private key text: OpenSSH or PEM; RSA, ECDSA or Ed25519; unencrypted."
    )
    port: int = Field(22, ge=1, le=65535)
    remote_path: str = Field("/", min_length=1, max_length=1024, description="Holds new/processing/completed/error.")
    host_key: str | None = Field(
        None,
        description="Expected server host key: an OpenSSH public key line ('ssh-ed25519 AAAA...') or a "
        "'SHA256:...' fingerprint. Without it the first key seen for host:port is trusted and stored.",
    )

    @field_validator("host")
    @classmethod
    def _host_is_plain(cls, v: str) -> str:
        if any(c.isspace() for c in v) or "\x00" in v:
            raise ValueError("host must not contain whitespace or NUL")
        return v

    @field_validator("remote_path")
    @classmethod
    def _remote_path_plain(cls, v: str) -> str:
        if "\x00" in v:
            raise ValueError("remote_path must not contain NUL")
        return v

    @model_validator(mode="after")
    def _one_auth_method(self) -> SFTPConfig:
        if not (self.password and self.password.get_secret_value()) and not self.key_path and not (
            self.private_key and self.private_key.get_secret_value()
        ):
            raise ValueError("one authentication method is required: password, key_path or private_key")
        return self


class FileInfo(BaseModel):
    path: str
    size: int
    modified: datetime | None
    status: str


class FailedFile(BaseModel):
    path: str
    error: str


class ScanResult(BaseModel):
    new_files: list[FileInfo] = Field(
        description="Files downloaded by this scan: untracked ones, and tracked 'new' ones whose size or "
        "mtime changed (those are also named in updated_files)."
    )
    total_files: int = Field(description="Regular files found in <remote_path>/new by this scan.")
    scan_timestamp: datetime
    scan_duration: float
    updated_files: list[str] = Field(default_factory=list, description="Tracked 'new' files re-downloaded.")
    failed_files: list[FailedFile] = Field(default_factory=list, description="Not registered; retried next scan.")
    removed_files: list[str] = Field(
        default_factory=list,
        description="Tracked 'new' files no longer in <remote_path>/new: unregistered, mirror copies deleted.",
    )


class StatusResponse(BaseModel):
    total_tracked_files: int
    last_scan_time: datetime | None
    file_registry: dict[str, FileInfo]


class NewFilesResponse(BaseModel):
    new_files: list[FileInfo]


class ConnectionKeyResponse(BaseModel):
    connection_key: str


class MessageResponse(BaseModel):
    message: str


class MarkProcessingResponse(BaseModel):
    message: str
    new_filename: str


class MarkFinishedResponse(BaseModel):
    message: str
    new_filename: str | None = Field(
        None, description="Only when a file of that name was already there and a distinct name was chosen."
    )
