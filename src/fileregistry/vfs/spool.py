"""Stream an upload body to a spool file on disk: never held whole in memory.

``Content-Encoding: gzip`` is decoded on the way in; the size limit applies to the decoded
bytes as well (a small gzip body may expand enormously).
"""

from __future__ import annotations

import contextlib
import os
import uuid
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

from fileregistry.errors import BadRequest, PayloadTooLarge


def spool_dir(settings) -> Path:
    return (settings.vfs_spool_dir or settings.data_dir / "spool").resolve()


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"upload body exceeds the limit of {limit} bytes",
                           body={"error": f"Upload body exceeds the limit of {limit} bytes"})


async def spool_body(stream: AsyncIterator[bytes], directory: Path, *, limit: int,
                     content_encoding: str | None = None, content_length: str | None = None) -> Path:
    """Write the body to ``directory/<uuid>.jsonl`` and return its path (removed on any error)."""
    if content_length and content_length.isdigit() and int(content_length) > limit and not content_encoding:
        raise _too_large(limit)
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        decomp = zlib.decompressobj(wbits=47)  # gzip or zlib header, auto-detected
    elif encoding in ("identity", ""):
        decomp = None
    else:
        raise BadRequest(f"unsupported Content-Encoding {content_encoding!r}",
                         body={"error": f"Unsupported Content-Encoding: {content_encoding}"})
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{uuid.uuid4().hex}.jsonl"
    written = 0
    raw = 0
    try:
        with open(path, "wb", buffering=1 << 20) as out:
            async for chunk in stream:
                if not chunk:
                    continue
                raw += len(chunk)
                if raw > limit:
                    raise _too_large(limit)
                if decomp is not None:
                    try:
                        # Bounded output per call: a gzip bomb cannot blow up memory.
                        data = decomp.decompress(chunk, 1 << 20)
                        while True:
                            written += len(data)
                            if written > limit:
                                raise _too_large(limit)
                            out.write(data)
                            if not decomp.unconsumed_tail:
                                break
                            data = decomp.decompress(decomp.unconsumed_tail, 1 << 20)
                    except zlib.error as exc:
                        raise BadRequest(f"invalid gzip body: {exc}",
                                         body={"error": f"Invalid gzip body: {exc}"}) from None
                else:
                    written += len(chunk)
                    out.write(chunk)
            if decomp is not None:
                if not decomp.eof:
                    raise BadRequest("truncated gzip body", body={"error": "Invalid gzip body: truncated"})
                tail = decomp.flush()
                written += len(tail)
                if written > limit:
                    raise _too_large(limit)
                out.write(tail)
        return path
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise

