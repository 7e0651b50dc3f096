"""Client /sftp methods against a live server and a real sshd, with an inline SFTPConfig."""

from __future__ import annotations

import asyncio

import pytest

from fileregistry.client import (
    AsyncClient,
    BadRequest,
    Client,
    Conflict,
    Forbidden,
    NotFound,
    ServerError,
    ValidationFailed,
)
from fileregistry.sftp.schemas import SFTPConfig

pytestmark = pytest.mark.sshd


def test_lifecycle_with_config_dict_and_model(server, zone):
    zone.put("a.csv", "1\n2\n")
    zone.put("b.txt", "x")
    model = SFTPConfig.model_validate(zone.cfg)  # secrets as SecretStr: sent in clear, never shown
    with Client(server.url, refresh_token=server.admin_refresh, user_id=server.admin_id) as fr:
        assert fr.connection_key(config=model).connection_key == zone.key
        scan = fr.scan(config=zone.cfg)
        assert sorted(f.path for f in scan.new_files) == ["a.csv", "b.txt"] and scan.total_files == 2
        assert [f.path for f in fr.new_files(config=model).new_files] == ["a.csv", "b.txt"]

        claimed = fr.mark_processing("a.csv", config=model)
        assert claimed.new_filename.startswith("a_") and claimed.new_filename.endswith(".csv")
        assert (zone.mirror / "processing" / claimed.new_filename).read_bytes() == b"1\n2\n"
        done = fr.mark_completed(claimed.new_filename, config=zone.cfg)
        assert done.message == f"File {claimed.new_filename} moved to completed." and done.new_filename is None

        status = fr.status(config=zone.cfg)
        assert status.total_tracked_files == 2
        assert set(status.file_registry) == {f"completed/{claimed.new_filename}", "new/b.txt"}
        assert zone.remote_tree() == {"new": b"<dir>", "new/b.txt": b"x", "processing": b"<dir>",
                                      "completed": b"<dir>", f"completed/{claimed.new_filename}": b"1\n2\n"}

        b = fr.mark_processing("b.txt", config=zone.cfg).new_filename
        assert fr.mark_error(b, config=zone.cfg).message == f"File {b} moved to error."
        assert (zone.path / "error" / b).read_bytes() == b"x"

        assert fr.clear_registry(config=zone.cfg).message == "Registry cleared"
        assert fr.status(config=zone.cfg).total_tracked_files == 0


def test_sftp_errors_are_typed_with_the_server_message(server, zone):
    zone.put("a.csv")
    with Client(server.url, refresh_token=server.admin_refresh, user_id=server.admin_id) as fr:
        fr.scan(config=zone.cfg)
        with pytest.raises(ValidationFailed) as invalid:
            fr.scan(config={"host": "h", "username": "u"})
        assert invalid.value.status_code == 422
        assert "one authentication method is required" in invalid.value.message
        with pytest.raises(BadRequest) as bad:
            fr.mark_processing("../a.csv", config=zone.cfg)  # sent as one segment: ..%2Fa.csv
        assert bad.value.status_code == 400
        with pytest.raises(NotFound) as nf:
            fr.mark_completed("nope.csv", config=zone.cfg)
        assert "nope.csv" in nf.value.message
        with pytest.raises(Conflict) as conflict:
            fr.mark_completed("a.csv", config=zone.cfg)
        assert "in state 'new'" in conflict.value.message
        name = fr.mark_processing("a.csv", config=zone.cfg).new_filename
        with pytest.raises(Conflict) as conflict:
            fr.mark_processing("a.csv", config=zone.cfg)
        assert "'processing'" in conflict.value.message and name in conflict.value.message
        with pytest.raises(NotFound) as nf:
            fr.scan(config={**zone.cfg, "remote_path": str(zone.path / "missing")})
        assert "missing" in nf.value.message
        with pytest.raises(ServerError) as upstream:
            fr.scan(config={**zone.cfg, "private_key": None, "password": "wrong"})
        assert upstream.value.status_code == 502 and "wrong" not in str(upstream.value)
        with pytest.raises(TypeError):
            fr.scan()
        with pytest.raises(TypeError):
            fr.scan(source="x", config=zone.cfg)
    with Client(server.url, access_token=server.user_token) as alice:
        assert alice.status(config=zone.cfg).total_tracked_files == 1
        with pytest.raises(Forbidden) as forbidden:
            alice.clear_registry(config=zone.cfg)
        assert forbidden.value.message == "This action requires an admin user."


def test_async_lifecycle_concurrent_marks(server, zone):
    for i in range(6):
        zone.put(f"f{i}.csv", str(i))

    async def go() -> list[str]:
        async with AsyncClient(server.url, refresh_token=server.admin_refresh, user_id=server.admin_id) as fr:
            assert len((await fr.scan(config=zone.cfg)).new_files) == 6
            names = [f.path for f in (await fr.new_files(config=zone.cfg)).new_files]
            claimed = await asyncio.gather(*(fr.mark_processing(n, config=zone.cfg) for n in names))
            done = await asyncio.gather(*(fr.mark_completed(c.new_filename, config=zone.cfg) for c in claimed))
            assert all(d.message.endswith("moved to completed.") for d in done)
            return [c.new_filename for c in claimed]

    names = asyncio.run(go())
    assert sorted(p.name for p in (zone.path / "completed").iterdir()) == sorted(names)
    assert list((zone.path / "new").iterdir()) == []
