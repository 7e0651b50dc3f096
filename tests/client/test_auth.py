"""Client token handling against a live server: exchange, refresh before expiry, refresh after a 401."""

from __future__ import annotations

import asyncio
import time

import pytest

from fileregistry.client import AsyncClient, Client, RateLimited, TransportError, Unauthorized

from .conftest import AsyncRecorder, Recorder, free_port, revoke_access_token

EXCHANGE = "/integration/v1/createAPIAccessToken/"
USERINFO = "/integration/v1/userinfo/"


def test_refresh_token_is_exchanged_once_and_sent_as_token_header(server):
    rec = Recorder()
    with Client(server.url, refresh_token=server.admin_refresh, user_id=server.admin_id, transport=rec) as fr:
        assert fr.userinfo().username == "admin"
        assert fr.userinfo().role == "SERVER_ADMIN"
        info = fr.validate_access_token()
        assert info.token_status == "ACTIVE" and info.user_id == server.admin_id
        assert fr.validate_refresh_token().name == "dag"
    assert rec.log[:3] == [("POST", EXCHANGE, 201), ("GET", USERINFO, 200), ("GET", USERINFO, 200)]
    assert [e for e in rec.log if e[1] == EXCHANGE] == [("POST", EXCHANGE, 201)]


def test_access_token_refreshed_before_it_expires(start_server):
    server = start_server(access_token_ttl_hours=str(4 / 3600))  # 4 s tokens: refreshed 0.4 s before expiry
    rec = Recorder()
    with Client(server.url, refresh_token=server.admin_refresh, user_id=server.admin_id, transport=rec) as fr:
        fr.userinfo()
        first = fr._tokens.access_token
        refresh_at = fr._tokens._refresh_at
        assert refresh_at is not None
        lifetime = (fr._tokens.expires_at.timestamp() - time.time())
        assert 3 < lifetime <= 4.1
        fr.userinfo()  # well within the lifetime: no new exchange
        assert fr._tokens.access_token == first
        time.sleep(max(0.0, refresh_at - time.monotonic()) + 0.05)  # inside the margin, token still valid
        assert fr.userinfo().username == "admin"
        assert fr._tokens.access_token != first
        time.sleep(4.5)  # now past the whole lifetime of the second token
        assert fr.userinfo().username == "admin"
    assert all(status != 401 for _m, _p, status in rec.log), rec.log
    assert [p for _m, p, _s in rec.log] == [EXCHANGE, USERINFO, USERINFO, EXCHANGE, USERINFO, EXCHANGE, USERINFO]


def test_refresh_once_after_401(server):
    rec = Recorder()
    with Client(server.url, refresh_token=server.admin_refresh, user_id=server.admin_id, transport=rec) as fr:
        fr.userinfo()
        revoke_access_token(server.db_url, fr._tokens.access_token)
        assert fr.userinfo().username == "admin"
    assert rec.log == [("POST", EXCHANGE, 201), ("GET", USERINFO, 200), ("GET", USERINFO, 401),
                       ("POST", EXCHANGE, 201), ("GET", USERINFO, 200)]


def test_access_token_only_no_refresh_and_401_message(server):
    rec = Recorder()
    with Client(server.url, access_token=server.user_token, transport=rec) as fr:
        assert fr.userinfo().username == "alice"
        revoke_access_token(server.db_url, server.user_token)
        with pytest.raises(Unauthorized) as exc:
            fr.userinfo()
    assert exc.value.status_code == 401 and exc.value.message == "Authentication failed"
    assert [p for _m, p, _s in rec.log] == [USERINFO, USERINFO]


def test_bad_refresh_token_is_unauthorized_with_server_message_and_no_token_anywhere(server):
    secret = "not-a-real-refresh-token-" + "x" * 20
    fr = Client(server.url, refresh_token=secret, user_id=server.admin_id)
    with fr, pytest.raises(Unauthorized) as exc:
        fr.userinfo()
    err = exc.value
    assert err.message == "Refresh token provided is invalid."
    assert err.body == {"detail": "Refresh token provided is invalid.", "code": "401000"}
    assert err.method == "POST" and err.path == EXCHANGE
    for text in (str(err), repr(err), repr(fr), repr(err.body)):
        assert secret not in text
    assert server.admin_refresh not in repr(Client(server.url, refresh_token=server.admin_refresh, user_id=1))
    assert server.admin_token not in repr(Client(server.url, access_token=server.admin_token))


def test_a_valid_refresh_token_of_another_user_is_refused(server):
    with Client(server.url, refresh_token=server.user_refresh, user_id=server.admin_id) as fr, \
            pytest.raises(Unauthorized):
        fr.userinfo()


def test_rate_limited_exchange_carries_retry_after(start_server):
    server = start_server(auth_max_failures="2")
    with Client(server.url, refresh_token="wrong", user_id=server.admin_id) as fr:
        for _ in range(2):
            with pytest.raises(Unauthorized):
                fr.userinfo()
        with pytest.raises(RateLimited) as exc:
            fr.userinfo()
    assert exc.value.status_code == 429 and exc.value.retry_after and exc.value.retry_after > 0
    assert "Too many failed token attempts" in exc.value.message


def test_transport_error_when_nothing_listens():
    with Client(f"http://127.0.0.1:{free_port()}", access_token="secret-token-value") as fr, \
            pytest.raises(TransportError) as exc:
        fr.userinfo()
    assert exc.value.status_code is None
    assert "secret-token-value" not in str(exc.value)
    assert exc.value.__cause__ is None and exc.value.__context__ is None


def test_from_env(server, monkeypatch):
    monkeypatch.setenv("FILEREGISTRY_URL", server.url)
    monkeypatch.setenv("FILEREGISTRY_REFRESH_TOKEN", server.user_refresh)
    monkeypatch.setenv("FILEREGISTRY_USER_ID", str(server.user_id))
    monkeypatch.delenv("FILEREGISTRY_TOKEN", raising=False)
    with Client.from_env() as fr:
        assert fr.userinfo().username == "alice"
    monkeypatch.delenv("FILEREGISTRY_REFRESH_TOKEN")
    monkeypatch.setenv("FILEREGISTRY_TOKEN", server.admin_token)

    async def go() -> str:
        async with AsyncClient.from_env() as afr:
            return (await afr.userinfo()).username

    assert asyncio.run(go()) == "admin"


def test_async_refresh_before_expiry_and_after_401_shared_by_concurrent_calls(start_server):
    server = start_server(access_token_ttl_hours=str(3 / 3600))
    rec = AsyncRecorder()

    async def go() -> None:
        async with AsyncClient(server.url, refresh_token=server.admin_refresh, user_id=server.admin_id,
                               transport=rec) as fr:
            names = await asyncio.gather(*(fr.userinfo() for _ in range(8)))
            assert {n.username for n in names} == {"admin"}
            await asyncio.sleep(3.2)  # past expiry: one proactive refresh for all 8 calls
            await asyncio.gather(*(fr.userinfo() for _ in range(8)))
            await asyncio.to_thread(revoke_access_token, server.db_url, fr._tokens.access_token)
            assert (await fr.userinfo()).username == "admin"

    asyncio.run(go())
    exchanges = [i for i, e in enumerate(rec.log) if e[1] == EXCHANGE]
    assert len(exchanges) == 3, rec.log
    assert [s for _m, _p, s in rec.log].count(401) == 1
    assert rec.log[-3:] == [("GET", USERINFO, 401), ("POST", EXCHANGE, 201), ("GET", USERINFO, 200)]


def test_health_readiness_and_metrics_need_no_token(server):
    with Client(server.url) as anon:
        assert anon.healthz() == {"status": "ok"}
        assert anon.readyz() == {"status": "ready"}
        assert "# TYPE" in anon.metrics()
        with pytest.raises(Unauthorized) as exc:
            anon.userinfo()
    assert exc.value.message == "Authentication credentials were not provided."

    async def go() -> dict:
        async with AsyncClient(server.url) as afr:
            assert "# HELP" in await afr.metrics()
            return await afr.readyz()

    assert asyncio.run(go()) == {"status": "ready"}
