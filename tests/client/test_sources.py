"""Client methods of the stored sources (/generic/sftp-config) and source= on /sftp, live server + sshd."""

from __future__ import annotations

import asyncio

import pytest

from fileregistry.client import AsyncClient, Client, Forbidden, NotFound, ValidationFailed
from fileregistry.sftp.schemas import SFTPConfig

pytestmark = pytest.mark.sshd

REDACTED = "********"


def admin(server) -> Client:
    return Client(server.url, refresh_token=server.admin_refresh, user_id=server.admin_id)


def test_put_list_get_delete_and_redaction(server, zone):
    with admin(server) as fr:
        view = fr.put_source("partner-a", zone.cfg, scan_interval_seconds=None)
        assert (view.category, view.source, view.scan_interval_seconds) == ("partner-a", "partner-a", None)
        assert view.config["private_key"] == REDACTED and view.config["host"] == zone.cfg["host"]
        fr.put_source("partner-b", SFTPConfig.model_validate(zone.cfg), scan_interval_seconds=3600)
        assert [v.source for v in fr.list_sources()] == ["partner-a", "partner-b"]
        assert [v.source for v in fr.list_sources(category="partner-b")] == ["partner-b"]
        assert fr.get_source("partner-b").scan_interval_seconds == 3600
        full = fr.get_source("partner-a", include_secrets=True)
        assert full.config["private_key"] == zone.cfg["private_key"]

        # GET, edit a field, PUT back: the redacted secret keeps the stored one
        edited = fr.put_source("partner-a", {**view.config, "port": zone.cfg["port"]}, scan_interval_seconds=600)
        assert edited.scan_interval_seconds == 600 and edited.config["private_key"] == REDACTED
        assert fr.get_source("partner-a", include_secrets=True).config["private_key"] == zone.cfg["private_key"]

        assert "partner-b" in fr.delete_source("partner-b").message
        with pytest.raises(NotFound) as nf:
            fr.get_source("partner-b")
        assert nf.value.status_code == 404 and nf.value.message == "SFTP source 'partner-b' not found"
        with pytest.raises(NotFound):
            fr.delete_source("partner-b")


def test_source_errors_and_permissions(server, zone):
    with admin(server) as fr:
        fr.put_source("partner-a", zone.cfg)
        with pytest.raises(ValidationFailed) as bad_name:
            fr.put_source("bad name!", zone.cfg)
        assert bad_name.value.status_code == 422 and "letters, digits" in bad_name.value.message
        with pytest.raises(ValidationFailed) as no_auth:
            fr.put_source("partner-c", {"host": "h", "username": "u"})
        assert "authentication method" in no_auth.value.message
        with pytest.raises(ValidationFailed) as interval:
            fr.put_source("partner-c", zone.cfg, scan_interval_seconds=0)
        assert "scan_interval_seconds" in interval.value.message
        with pytest.raises(NotFound) as nf:
            fr.scan(source="nope")
        assert nf.value.message == "SFTP source 'nope' not found"
    with Client(server.url, refresh_token=server.user_refresh, user_id=server.user_id) as alice:
        [view] = alice.list_sources()
        assert view.config["private_key"] == REDACTED
        with pytest.raises(Forbidden) as forbidden:
            alice.get_source("partner-a", include_secrets=True)
        assert forbidden.value.message == "include_secrets=true is for admins only"
        with pytest.raises(Forbidden):
            alice.list_sources(include_secrets=True)
        with pytest.raises(Forbidden) as forbidden:
            alice.put_source("partner-x", zone.cfg)
        assert forbidden.value.message == "This action requires an admin user."
        with pytest.raises(Forbidden):
            alice.delete_source("partner-a")
        for text in (str(forbidden.value), repr(forbidden.value.body)):
            assert zone.cfg["private_key"] not in text


def test_lifecycle_by_source_name(server, zone):
    zone.put("a.csv", "a")
    zone.put("b.csv", "b")
    with admin(server) as fr:
        fr.put_source("partner-a", zone.cfg)
    with Client(server.url, refresh_token=server.user_refresh, user_id=server.user_id) as alice:
        # a non-admin uses a stored source without ever seeing its key
        assert alice.connection_key(source="partner-a").connection_key == zone.key
        assert sorted(f.path for f in alice.scan(source="partner-a").new_files) == ["a.csv", "b.csv"]
        assert [f.path for f in alice.new_files(source="partner-a").new_files] == ["a.csv", "b.csv"]
        a = alice.mark_processing("a.csv", source="partner-a").new_filename
        alice.mark_completed(a, source="partner-a")
        b = alice.mark_processing("b.csv", source="partner-a").new_filename
        alice.mark_error(b, source="partner-a")
        assert set(alice.status(source="partner-a").file_registry) == {f"completed/{a}", f"error/{b}"}
        with pytest.raises(Forbidden):
            alice.clear_registry(source="partner-a")
    assert (zone.path / "completed" / a).read_bytes() == b"a"
    assert (zone.path / "error" / b).read_bytes() == b"b"
    with admin(server) as fr:
        assert fr.clear_registry(source="partner-a").message == "Registry cleared"
        assert fr.status(source="partner-a").total_tracked_files == 0


def test_async_sources(server, zone):
    zone.put("z.csv", "z")

    async def go() -> None:
        async with AsyncClient(server.url, refresh_token=server.admin_refresh, user_id=server.admin_id) as fr:
            await fr.put_source("async-src", zone.cfg, scan_interval_seconds=None)
            assert [v.source for v in await fr.list_sources()] == ["async-src"]
            assert (await fr.get_source("async-src")).config["private_key"] == REDACTED
            scan = await fr.scan(source="async-src")
            assert [f.path for f in scan.new_files] == ["z.csv"]
            name = (await fr.mark_processing("z.csv", source="async-src")).new_filename
            await fr.mark_completed(name, source="async-src")
            await fr.delete_source("async-src")
            with pytest.raises(NotFound):
                await fr.get_source("async-src")

    asyncio.run(go())
    [done] = list((zone.path / "completed").iterdir())
    assert done.name.startswith("z_")
