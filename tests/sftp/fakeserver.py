"""An in-process asyncssh SFTP server for faults OpenSSH cannot produce on demand.

Runs on its own event loop in a thread (the app under test runs on the TestClient's loop).
Files whose name contains ``shrink`` come back short; ``broken`` fail with an SFTP error once the
read starts (``broken-big``: once it reaches ``fail_at`` bytes); ``stall`` never answers a read; a RENAME of ``lost-reply`` is done but never answered, one of
``hang-rename`` is neither done nor answered.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import asyncssh

from fileregistry.testing.sshd import free_port


class _FaultySFTP(asyncssh.SFTPServer):
    faults = True  # tests switch the faults off to check that the next scan retries
    fail_at = 1024 * 1024  # where "broken-big" files fail

    def __init__(self, chan: asyncssh.SSHServerChannel, root: Path) -> None:
        super().__init__(chan, chroot=str(root))

    def open(self, path, pflags, attrs):
        f = super().open(path, pflags, attrs)
        self._names = getattr(self, "_names", {})
        self._names[id(f)] = path
        return f

    async def read(self, file_obj, offset, size):
        name = self._names.get(id(file_obj), b"")
        if not self.faults:
            return super().read(file_obj, offset, size)
        if b"stall" in name:
            await asyncio.sleep(3600)
        if b"broken" in name and (b"big" not in name or offset + size > self.fail_at):
            raise asyncssh.SFTPFailure("simulated disk failure")
        data = super().read(file_obj, offset, size)
        if b"shrink" in name:
            return data[: max(0, 2 - offset)]  # the file "shrank" to 2 bytes while being read
        return data


    async def rename(self, oldpath, newpath):
        # "lost-reply": the server renames, but its answer never comes; "hang-rename": no rename and
        # no answer (the client cannot tell the two apart until it asks again).
        if self.faults and b"hang-rename" in oldpath:
            await asyncio.sleep(3600)
        result = super().rename(oldpath, newpath)
        if self.faults and b"lost-reply" in oldpath:
            await asyncio.sleep(3600)
        return result


class _Server(asyncssh.SSHServer):
    def __init__(self, conns: list) -> None:
        self._conns = conns

    def connection_made(self, conn) -> None:
        self._conns.append(conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return password == "fake-secret-pw"

    def public_key_auth_supported(self) -> bool:
        return False


class FakeSFTPServer:
    def __init__(self, root: Path, host_key: asyncssh.SSHKey | None = None, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self.host_key = host_key or asyncssh.generate_private_key("ssh-ed25519")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server = None
        self._conns: list = []

    @property
    def host_pubkey_line(self) -> str:
        return self.host_key.export_public_key().decode().strip()

    def config(self, remote_path: str) -> dict:
        return {"host": "127.0.0.1", "port": self.port, "username": "u", "password": "fake-secret-pw",
                "remote_path": remote_path}

    def start(self) -> FakeSFTPServer:
        self._thread.start()
        root = self.root

        async def serve():
            return await asyncssh.create_server(
                lambda: _Server(self._conns), "127.0.0.1", self.port, server_host_keys=[self.host_key],
                sftp_factory=lambda chan: _FaultySFTP(chan, root),
            )

        self._server = asyncio.run_coroutine_threadsafe(serve(), self._loop).result(10)
        return self

    def stop(self) -> None:
        async def close():
            self._server.close()
            for conn in self._conns:  # like a real server going away: clients see the TCP close
                conn.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
