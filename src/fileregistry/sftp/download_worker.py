"""Downloads of one scan shared with helper OS processes (``sftp_download_processes``).

The client of a scan of many small files is CPU-bound in Python (asyncssh's packet handling), so a
big first scan hands part of its downloads to a child process with its own SSH connection:

* the parent keeps listing, registry writes and the result; the child only downloads;
* the child is started only when the todo list is large (:data:`SPLIT_MIN_FILES`), as
  ``python -m fileregistry.sftp.download_worker``; the config (with its secrets) goes over its stdin
  pipe, never on the command line or in the environment;
* the child's connection must present the **same host key** the parent's connection already
  verified: it gets that key as its expected ``host_key`` (a different key is refused as usual);
* work is handed out in small chunks from the parent's one shared iterator, a few chunks ahead, so
  the two processes finish together however long the child took to start;
* every file goes through :func:`fetch_one` in either process: temp file, then rename into ``new/``
  only when the byte count matches the listing; the child reports each file's outcome;
* if the child cannot connect, it takes no work; if it dies, what it had not reported is listed as
  failed (its temp files removed); if the scan is cancelled or times out, the child is killed.

Messages on the pipes are length-prefixed pickles between this module and its own child.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import pickle
import struct
import sys
from collections.abc import Callable, Iterator

from fileregistry.errors import AppError

SPLIT_MIN_FILES = 2000  # below this, starting a process (~0.3-0.8 s of imports) does not pay
CHUNK = 64  # files per hand-out to a child
AHEAD = 3  # chunks a child holds at once (one in work, the rest queued)

_LEN = struct.Struct(">I")

Job = tuple[int, str, int]  # index in the todo list, bare name, listed size


class SizeChanged(Exception):
    def __init__(self, expected: int, got: int) -> None:
        more = "more than " if got > expected else ""
        super().__init__(f"size changed during download: listed {expected} bytes, read {more}{min(got, expected)}")


def why(exc: BaseException) -> str:
    if isinstance(exc, AppError):
        return exc.message
    if isinstance(exc, OSError):
        return f"mirror write failed: {exc.strerror or type(exc).__name__}"
    return str(exc)


def unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


async def fetch_one(rs, remote_new: str, tmp_dir: str, new_dir: str, i: int, name: str, size: int) -> str | None:
    """Download one listed file; None when it is in ``new/``, else why it failed (nothing left behind).

    Plain strings, not pathlib: this runs once per file and pathlib costs microseconds per join.
    """
    tmp = f"{tmp_dir}/{i}.part"
    try:
        got = await rs.download(f"{remote_new}/{name}", tmp, size)
        if got != size:
            raise SizeChanged(size, got)
        # name is a validated bare name, so the join cannot leave new_dir.
        os.replace(tmp, f"{new_dir}/{name}")
        return None
    except (AppError, OSError, SizeChanged) as exc:
        unlink(tmp)
        return why(exc)
    except BaseException:
        unlink(tmp)
        raise


# --------------------------------------------------------------------------- framing


def _frame(obj) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _LEN.pack(len(data)) + data


async def _read(reader: asyncio.StreamReader):
    """One message, or None at end of stream."""
    try:
        head = await reader.readexactly(_LEN.size)
        return pickle.loads(await reader.readexactly(_LEN.unpack(head)[0]))  # our own child
    except asyncio.IncompleteReadError:
        return None


# --------------------------------------------------------------------------- parent side


class Helper:
    """One child process downloading chunks of the parent's shared job iterator."""

    def __init__(self, jobs: Iterator[Job], on_result: Callable[[int, str | None], None], tmp_dir: str) -> None:
        self._jobs = jobs
        self._on_result = on_result
        self._tmp_dir = tmp_dir
        self._proc: asyncio.subprocess.Process | None = None
        self.outstanding: dict[int, None] = {}  # indices handed to the child and not yet reported
        self.handled = 0  # files the child reported (for tests and metrics)
        self.error: str | None = None  # why the child did not help (connect failure, crash)

    async def run(self, payload: dict) -> None:
        """Start the child, feed it until the shared iterator is empty, collect every outcome."""
        self._proc = proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "fileregistry.sftp.download_worker",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        try:
            proc.stdin.write(_frame(payload))
            await proc.stdin.drain()
            first = await _read(proc.stdout)
            if not first or first[0] != "ready":
                self.error = first[1] if first and first[0] == "error" else "download worker did not start"
                return
            exhausted = False
            while True:
                while not exhausted and len(self.outstanding) < AHEAD * CHUNK:
                    chunk = list(itertools.islice(self._jobs, CHUNK))
                    if not chunk:
                        exhausted = True
                        break
                    for job in chunk:
                        self.outstanding[job[0]] = None
                    proc.stdin.write(_frame(("chunk", chunk)))
                if exhausted and not self.outstanding:
                    break
                await proc.stdin.drain()
                msg = await _read(proc.stdout)
                if msg is None:
                    self.error = "download worker process exited unexpectedly"
                    break
                for i, err in msg[1]:
                    if self.outstanding.pop(i, 0) is None:
                        self.handled += 1
                        self._on_result(i, err)
            if proc.stdin and not proc.stdin.is_closing():
                proc.stdin.write(_frame(("end",)))
                with contextlib.suppress(OSError):
                    await proc.stdin.drain()
                proc.stdin.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await proc.wait()
        except (OSError, ConnectionError):
            self.error = "download worker process exited unexpectedly"
        finally:
            # Kill and reap the child before removing its temp files (it must not write after that);
            # a second cancellation while waiting (the scan's timeout, then its cleanup) waits on.
            cancelled = await self._stop()
            for i in list(self.outstanding):  # handed out, never reported: failed, nothing left behind
                self.outstanding.pop(i)
                unlink(f"{self._tmp_dir}/{i}.part")
                self._on_result(i, self.error or "download worker process stopped")
            if cancelled:
                raise asyncio.CancelledError

    async def _stop(self) -> bool:
        proc, cancelled = self._proc, False
        if proc is None or proc.returncode is not None:
            return False
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        while proc.returncode is None:
            try:
                await asyncio.shield(proc.wait())
            except asyncio.CancelledError:
                cancelled = True
            except Exception:  # nothing more to wait for
                break
        return cancelled


# --------------------------------------------------------------------------- child side


async def _child() -> None:
    from fileregistry.sftp import remote

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    out = _OUT

    def send(obj) -> None:
        out.write(_frame(obj))
        out.flush()

    payload = await _read(reader)
    if payload is None:
        return
    try:
        expected = remote.parse_host_key(payload["host_key"])
        rs = await remote.connect_session(payload["config"], settings=payload["settings"], expected=expected)
    except AppError as exc:
        send(("error", exc.message))
        return
    remote_new, tmp_dir, new_dir = payload["remote_new"], payload["tmp_dir"], payload["new_dir"]
    queue: asyncio.Queue[Job | None] = asyncio.Queue()
    results: list[tuple[int, str | None]] = []
    workers_n = payload["concurrency"]

    def flush() -> None:
        if results:
            send(("done", results[:]))
            results.clear()

    async def worker() -> None:
        while (job := await queue.get()) is not None:
            i, name, size = job
            results.append((i, await fetch_one(rs, remote_new, tmp_dir, new_dir, i, name, size)))
            if len(results) >= CHUNK // 2 or queue.empty():
                flush()

    try:
        send(("ready",))
        workers = [asyncio.ensure_future(worker()) for _ in range(workers_n)]
        while (msg := await _read(reader)) is not None and msg[0] == "chunk":
            for job in msg[1]:
                queue.put_nowait(job)
        for _ in workers:
            queue.put_nowait(None)
        await asyncio.gather(*workers)
        flush()
    finally:
        await rs.aclose()


_OUT = sys.stdout.buffer


def _main() -> None:
    global _OUT
    # fd 1 is the message pipe: keep a private handle on it and send stray output to stderr instead.
    _OUT = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    asyncio.run(_child())


if __name__ == "__main__":
    _main()
