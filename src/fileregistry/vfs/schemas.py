"""Request and response bodies of the VFS routes (OpenAPI documentation and validation)."""

from __future__ import annotations

from pydantic import BaseModel, Field

NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL: no name or path can have one (422)


class FileSystemCreate(BaseModel):
    name: str = Field(..., min_length=1, max_length=255, pattern=NO_NUL,
                      description="Unique name of the file system.")
    delimiter: str = Field("/", min_length=1, max_length=1, pattern=NO_NUL,
                           description="Path delimiter (one character).")


class FileSystemOut(BaseModel):
    id: int
    name: str
    delimiter: str
    created_at: str | None = None
    entry_count: int | None = None


class JobLink(BaseModel):
    url: str
    errors_url: str
    id: int


class UploadAccepted(BaseModel):
    job: JobLink


class JobStatus(BaseModel):
    id: int
    status: str = Field(..., description="running | successful | failed")
    msg: str
    result: list[str]
    counts: dict


class JobErrorOut(BaseModel):
    id: int
    severity: str = Field(..., description="error | warning")
    line: int | None
    field: str | None
    code: str
    message: str


class EntryOut(BaseModel):
    id: int
    path: str
    name: str
    full_path: str
    is_directory: bool
    implied: bool
    size_in_bytes: int | None
    ts_last_modified: str | None
    ts_last_accessed: str | None
    owner: str | None
    group: str | None
    permission_bits: int | None
    storage_type: int | None


class ChildrenPage(BaseModel):
    path: str
    items: list[EntryOut]
    next_cursor: str | None
