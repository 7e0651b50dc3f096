"""Stream an upload body to a spool file on disk: never held whole in memory.

``Content-Encoding: gzip`` is decoded on the way in; the size limit applies to the decoded
bytes as well (a small gzip body may expand enormously). Like ``gzip`` and ``curl --compressed``,
a body of several concatenated gzip members decodes to their concatenation (zero padding after a
member is ignored); bytes after a member that are not another gzip member, or a stream that ends
inside a member, are a 400 and nothing is spooled.
"""

from __future__ import annotations

import contextlib
import os
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from fileregistry.errors import BadRequest, PayloadTooLarge


def spool_dir(settings) -> Path:
    return (settings.vfs_spool_dir or settings.data_dir / "spool").resolve()


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"upload body exceeds the limit of {limit} bytes",
                           body={"error": f"Upload body exceeds the limit of {limit} bytes"})


def _bad_gzip(problem: str) -> BadRequest:
    return BadRequest(f"invalid gzip body: {problem}", body={"error": f"Invalid gzip body: {problem}"})


_GZIP_MAGIC = b"\x1f\x8b"
_OUT_STEP = 1 << 20  # decoded bytes per zlib call: a gzip bomb cannot blow up memory


class GzipDecoder:
    """Incremental decoder of one or more concatenated gzip members.

    The first member may also be a zlib stream (``wbits=47`` auto-detects, as before); every
    later one must start with the gzip magic bytes. ``feed`` yields decoded pieces of at most
    ``_OUT_STEP`` bytes; ``finish`` checks that the body did not stop inside a member.
    """

    def __init__(self) -> None:
        self._d: zlib._Decompress | None = zlib.decompressobj(wbits=47)
        self._pending = b""  # bytes after a finished member, not yet known to start a new one

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self._d is None:
                data = self._pending + data
                self._pending = b""
                data = data.lstrip(b"\0")  # gzip's zero padding between/after members
                if not data:
                    return
                if not _GZIP_MAGIC.startswith(data[:2]):
                    raise _bad_gzip("trailing data after the end of the gzip stream (not a gzip member)")
                if len(data) < 2:
                    self._pending = data  # half a magic: wait for the next chunk
                    return
                self._d = zlib.decompressobj(wbits=31)  # gzip only
            d = self._d
            try:
                out = d.decompress(data, _OUT_STEP)
                while True:
                    if out:
                        yield out
                    # A full step may leave output pending inside zlib even with no input left.
                    if d.eof or (not d.unconsumed_tail and len(out) < _OUT_STEP):
                        break
                    out = d.decompress(d.unconsumed_tail, _OUT_STEP)
            except zlib.error as exc:
                raise _bad_gzip(str(exc)) from None
            if not d.eof:
                return  # consumed everything; the member goes on in the next chunk
            data = d.unused_data  # the member ended: whatever follows is the next one
            self._d = None

    def finish(self) -> None:
        if self._d is not None and not self._d.eof:
            raise _bad_gzip("truncated (the body ends inside a gzip member)")
        if self._pending:
            raise _bad_gzip("truncated (the body ends inside a gzip header)")


async def spool_body(stream: AsyncIterator[bytes], directory: Path, *, limit: int,
                     content_encoding: str | None = None, content_length: str | None = None) -> Path:
    """Write the body to ``directory/<uuid>.jsonl`` and return its path (removed on any error)."""
    if content_length and content_length.isdigit() and int(content_length) > limit and not content_encoding:
        raise _too_large(limit)
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        decoder: GzipDecoder | None = GzipDecoder()
    elif encoding in ("identity", ""):
        decoder = None
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
                if decoder is not None:
                    for data in decoder.feed(chunk):
                        written += len(data)
                        if written > limit:
                            raise _too_large(limit)
                        out.write(data)
                else:
                    written += len(chunk)
                    out.write(chunk)
            if decoder is not None:
                decoder.finish()
        return path
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
