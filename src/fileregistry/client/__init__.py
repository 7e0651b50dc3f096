"""Python client of the fileregistry HTTP API, for DAGs and scripts (docs/client.md).

    from fileregistry.client import Client

    with Client.from_env() as fr:       # FILEREGISTRY_URL + FILEREGISTRY_REFRESH_TOKEN/USER_ID or _TOKEN
        fr.scan(source="partner-a")
        for f in fr.new_files(source="partner-a").new_files:
            moved = fr.mark_processing(f.path, source="partner-a")
            ...
            fr.mark_completed(moved.new_filename, source="partner-a")

``AsyncClient`` has the same methods, awaitable. Errors are :class:`FileRegistryError` subclasses.
"""

from fileregistry.client._async import AsyncClient
from fileregistry.client._sync import Client
from fileregistry.client.errors import (
    BadRequest,
    Conflict,
    FileRegistryError,
    Forbidden,
    JobFailed,
    JobTimeout,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
    ValidationFailed,
)

__all__ = [
    "AsyncClient",
    "BadRequest",
    "Client",
    "Conflict",
    "FileRegistryError",
    "Forbidden",
    "JobFailed",
    "JobTimeout",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ServerError",
    "TransportError",
    "Unauthorized",
    "ValidationFailed",
]
