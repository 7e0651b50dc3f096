"""Task logic of the example DAG ``sftp_source_dag.py``: plain functions, importable without Airflow.

The lifecycle of one landing-zone file, as a DAG drives it through fileregistry::

    scan_source()                     scan <remote_path>/new, list every file waiting in state "new"
    process_file() for each name:
        mark_processing(name)         new/<name> -> processing/<new_name> (server, mirror, registry)
        fn(<local mirror path>)       your code, on the mirrored copy of processing/<new_name>
        mark_completed(new_name)      ... or mark_error(new_name) when fn raised

The mirror lives on the fileregistry server's disk
(``<mirror_dir>/<encoded connection key>/<state>/<name>``). A worker that sees that directory (same
host, or a shared volume, named by ``FILEREGISTRY_MIRROR_DIR``, else ``FILEREGISTRY_DATA_DIR``/mirror,
as on the server) reads the file in place (:func:`local_mirror_path`). Any other worker downloads the
server's copy over HTTP (``GET /sftp/file/<name>?state=processing``) into a temporary directory
that is removed after ``fn`` returns.

``source`` is a stored source's name (``PUT /generic/sftp-config/<name>``) or, for ad-hoc use, an
SFTPConfig dict.
"""

from __future__ import annotations

import importlib
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fileregistry.client import Client, Conflict, NotFound

log = logging.getLogger(__name__)

Source = str | Mapping[str, Any]
Processor = Callable[[Path], Any]


def make_client() -> Client:
    """A client from FILEREGISTRY_URL and FILEREGISTRY_REFRESH_TOKEN + FILEREGISTRY_USER_ID (or
    FILEREGISTRY_TOKEN). Set them in the workers' environment or a secrets backend."""
    return Client.from_env()


def target(source: Source) -> dict[str, Any]:
    """Keyword arguments selecting the landing zone: ``source=`` a stored name or ``config=`` a dict."""
    if isinstance(source, str):
        return {"source": source}
    if isinstance(source, Mapping):
        return {"config": dict(source)}
    raise TypeError("source must be a stored source's name or an SFTPConfig dict")


def mirror_dir_from_env() -> Path | None:
    """The server's mirror root as this worker sees it, or None (then files are downloaded)."""
    explicit = os.environ.get("FILEREGISTRY_MIRROR_DIR")
    if explicit:
        return Path(explicit)
    data_dir = os.environ.get("FILEREGISTRY_DATA_DIR")
    if data_dir:
        return Path(data_dir) / "mirror"
    return None


def local_mirror_path(mirror_dir: str | os.PathLike[str], connection_key: str, state: str, name: str) -> Path:
    """``<mirror_dir>/<encoded connection key>/<state>/<name>``, with the server's own encoding and checks."""
    from fileregistry.sftp.mirror import Mirror

    return Mirror(Path(mirror_dir), connection_key).path(state, name)


def resolve_callable(spec: str | Processor) -> Processor:
    """A processor given as ``"package.module:function"`` (what a DAG param can hold), or the callable."""
    if callable(spec):
        return spec
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ValueError(f"processor must look like 'package.module:function', not {spec!r}")
    fn = getattr(importlib.import_module(module), attr)
    if not callable(fn):
        raise TypeError(f"{spec!r} is not callable")
    return fn


def count_lines(path: Path) -> dict[str, Any]:
    """The example processor: bytes and lines of one file (the result goes to XCom, so keep it small)."""
    size = lines = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            size += len(chunk)
            lines += chunk.count(b"\n")
    return {"bytes": size, "lines": lines}


# --------------------------------------------------------------------------- the two tasks


def scan_source(client: Client, source: Source) -> list[str]:
    """Scan the landing zone, then return the names of **all** files in state ``new``: the ones this
    scan found and any an earlier run left unclaimed. Files the scan could not download are logged and
    retried by the next scan."""
    where = target(source)
    result = client.scan(**where)
    for failed in result.failed_files:
        log.warning("not downloaded, retried by the next scan: %s (%s)", failed.path, failed.error)
    for name in result.removed_files:
        log.warning("gone from the server before it was claimed, unregistered: %s", name)
    log.info("scan: %d files in new/, %d downloaded", result.total_files, len(result.new_files))
    return sorted(f.path for f in client.new_files(**where).new_files)


@dataclass
class Outcome:
    name: str  # the name in new/ that was claimed
    state: str  # completed | error | skipped
    final_name: str | None = None  # name in completed/ or error/
    result: Any = None  # what the processor returned
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def process_file(
    client: Client,
    source: Source,
    name: str,
    fn: Processor,
    *,
    mirror_dir: str | os.PathLike[str] | None = None,
    reraise: bool = True,
) -> Outcome:
    """Claim ``new/<name>``, run ``fn`` on its mirrored copy, then mark it completed (or error).

    A file another run claimed first (409) or that is gone (404) is ``skipped``. When ``fn`` raises,
    the file is marked ``error`` and the exception is re-raised (``reraise=False``: returned in the
    outcome instead), so the task shows as failed.
    """
    where = target(source)
    root = Path(mirror_dir) if mirror_dir is not None else mirror_dir_from_env()
    key = client.connection_key(**where).connection_key if root is not None else ""
    try:
        claimed = client.mark_processing(name, **where)
    except (Conflict, NotFound) as exc:
        log.info("skipped %s: %s", name, exc.message)
        return Outcome(name, "skipped", error=exc.message)
    current = claimed.new_filename  # processing/<stem>_<UTC timestamp><ext>: later calls use this name
    try:
        if root is not None:
            result = fn(local_mirror_path(root, key, "processing", current))
        else:
            with tempfile.TemporaryDirectory(prefix="fileregistry-") as tmp:
                path = Path(tmp) / current
                client.download_file(current, "processing", path, **where)
                result = fn(path)
    except Exception as exc:
        done = client.mark_error(current, **where)
        log.exception("processing %s failed; moved to error/%s", name, done.new_filename or current)
        if reraise:
            raise
        return Outcome(name, "error", done.new_filename or current, error=f"{type(exc).__name__}: {exc}")
    done = client.mark_completed(current, **where)
    return Outcome(name, "completed", done.new_filename or current, result=result)


def run_source(client: Client, source: Source, fn: Processor, *,
               mirror_dir: str | os.PathLike[str] | None = None) -> list[Outcome]:
    """Scan and process every new file in turn (without Airflow: a cron job or a script)."""
    return [process_file(client, source, name, fn, mirror_dir=mirror_dir, reraise=False)
            for name in scan_source(client, source)]
