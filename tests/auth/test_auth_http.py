"""Token endpoints and access control over HTTP against the app (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest

from fileregistry.auth import tokens, users
from fileregistry.auth.models import AccessToken, RefreshToken
from fileregistry.db import utcnow

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
INVALID_REFRESH = {"detail": "Refresh token provided is invalid.", "code": "401000"}
NOT_PROVIDED = {"detail": "Authentication credentials were not provided."}
FAILED = {"detail": "Authentication failed"}

V_REFRESH = "/integration/v1/validateRefreshToken/"
CREATE = "/integration/v1/createAPIAccessToken/"
V_ACCESS = "/integration/v1/validateAPIAccessToken/"
USERS = "/api/v1/users/"
USERINFO = "/integration/v1/userinfo/"


def make_refresh(db, username: str, *, days: float = 30, name: str = "t1", admin: bool = False):
    async def go(session):
        try:
            user = await users.get_user(session, username)
        except Exception:  # noqa: BLE001
            user = await users.create_user(session, username, is_admin=admin)
        row, token = await tokens.create_refresh_token(session, user, name=name, lifetime=timedelta(days=days))
        return user.id, token

    return db(go)


def exchange(anon_client, user_id, refresh) -> str:
    r = anon_client.post(CREATE, json={"refresh_token": refresh, "user_id": user_id})
    assert r.status_code == 201, r.text
    return r.json()["api_access_token"]


# --------------------------------------------------------------------------- token endpoints


def test_full_exchange(anon_client, db):
    uid, refresh = make_refresh(db, "bob", name="laptop")
    r = anon_client.post(V_REFRESH, json={"refresh_token": refresh, "user_id": uid})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"user_id", "created_at", "token_expires_at", "token_status", "last_used_at", "name",
                         "refresh_token"}
    assert body["user_id"] == uid and body["token_status"] == "ACTIVE" and body["name"] == "laptop"
    assert TS.match(body["created_at"]) and TS.match(body["token_expires_at"])
    assert body["last_used_at"] is None

    r = anon_client.post(CREATE, json={"refresh_token": refresh, "user_id": uid})
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"user_id", "created_at", "token_expires_at", "token_status", "api_access_token"}
    assert body["token_status"] == "ACTIVE" and body["user_id"] == uid
    access = body["api_access_token"]
    assert len(access) >= 43 and access != refresh
    assert TS.match(body["created_at"]) and TS.match(body["token_expires_at"])

    r = anon_client.post(V_REFRESH, json={"refresh_token": refresh, "user_id": uid})
    assert TS.match(r.json()["last_used_at"])

    r = anon_client.post(V_ACCESS, json={"api_access_token": access, "user_id": uid})
    assert r.status_code == 200, r.text
    assert r.json()["token_status"] == "ACTIVE" and r.json()["api_access_token"] == access

    r = anon_client.get(USERINFO, headers={"TOKEN": access})
    assert r.status_code == 200 and r.json()["username"] == "bob" and r.json()["id"] == uid


def test_access_token_ttl_is_24h_by_default(anon_client, db):
    uid, refresh = make_refresh(db, "bob")
    r = anon_client.post(CREATE, json={"refresh_token": refresh, "user_id": uid})
    from datetime import datetime

    body = r.json()
    created = datetime.strptime(body["created_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    expires = datetime.strptime(body["token_expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert expires - created == timedelta(hours=24)


@pytest.mark.parametrize("as_type", [str, int])
def test_user_id_int_or_numeric_string(anon_client, db, as_type):
    uid, refresh = make_refresh(db, "bob")
    for path in (V_REFRESH, CREATE):
        r = anon_client.post(path, json={"refresh_token": refresh, "user_id": as_type(uid)})
        assert r.status_code in (200, 201), r.text
        assert r.json()["user_id"] == uid
    access = r.json()["api_access_token"]
    r = anon_client.post(V_ACCESS, json={"api_access_token": access, "user_id": as_type(uid)})
    assert r.status_code == 200


@pytest.mark.parametrize("bad", ["abc", "1.0", True, None, 1.5, [1]])
def test_non_numeric_user_id_is_invalid(anon_client, db, bad):
    uid, refresh = make_refresh(db, "bob")
    r = anon_client.post(CREATE, json={"refresh_token": refresh, "user_id": bad})
    assert r.status_code == 401 and r.json() == INVALID_REFRESH


@pytest.mark.parametrize("path", [V_REFRESH, CREATE, V_ACCESS])
def test_trailing_slash_optional_without_redirect(anon_client, db, path):
    uid, refresh = make_refresh(db, "bob")
    access = exchange(anon_client, uid, refresh)
    field, value = ("api_access_token", access) if path == V_ACCESS else ("refresh_token", refresh)
    for p in (path, path.rstrip("/")):
        r = anon_client.post(p, json={field: value, "user_id": uid}, follow_redirects=False)
        assert r.status_code in (200, 201), (p, r.status_code)


def test_unknown_or_wrong_refresh_token(anon_client, db):
    uid, refresh = make_refresh(db, "bob")
    other_uid, _ = make_refresh(db, "carol")
    for body in (
        {"refresh_token": "x" * 43, "user_id": uid},
        {"refresh_token": refresh, "user_id": other_uid},  # someone else's id
        {"refresh_token": refresh, "user_id": 999999},
        {"refresh_token": refresh[:-1], "user_id": uid},
    ):
        for path in (V_REFRESH, CREATE):
            r = anon_client.post(path, json=body)
            assert r.status_code == 401 and r.json() == INVALID_REFRESH, (path, r.text)


def test_unknown_access_token(anon_client, db, auth_tokens):
    r = anon_client.post(V_ACCESS, json={"api_access_token": "nope", "user_id": auth_tokens.admin_id})
    assert r.status_code == 401 and r.json()["code"] == "401000"
    # Right token, wrong user.
    r = anon_client.post(V_ACCESS, json={"api_access_token": auth_tokens.admin_token, "user_id": auth_tokens.user_id})
    assert r.status_code == 401


def test_malformed_body_is_400_and_echoes_nothing(anon_client):
    secret = "s3cr3t-token-value-that-must-not-echo"
    for content in (b"not json " + secret.encode(), b'"' + secret.encode() + b'"', b"{}",
                    b'{"refresh_token": 5, "user_id": 1}', b'{"refresh_token": "' + secret.encode() + b'"}'):
        r = anon_client.post(CREATE, content=content, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, r.text
        assert secret not in r.text


def test_expired_refresh_token(anon_client, db):
    uid, refresh = make_refresh(db, "bob")

    async def expire(session):
        row = (await tokens.list_refresh_tokens(session, "bob"))[0]
        row.expires_at = utcnow() - timedelta(seconds=1)

    db(expire)
    r = anon_client.post(V_REFRESH, json={"refresh_token": refresh, "user_id": uid})
    assert r.status_code == 200 and r.json()["token_status"] == "EXPIRED"
    r = anon_client.post(CREATE, json={"refresh_token": refresh, "user_id": uid})
    assert r.status_code == 401 and r.json() == INVALID_REFRESH


def test_expired_access_token(anon_client, db):
    uid, refresh = make_refresh(db, "bob")
    access = exchange(anon_client, uid, refresh)
    assert anon_client.get(USERINFO, headers={"TOKEN": access}).status_code == 200

    async def expire(session):
        from sqlalchemy import update

        await session.execute(update(AccessToken).values(expires_at=utcnow() - timedelta(seconds=1)))

    db(expire)
    r = anon_client.get(USERINFO, headers={"TOKEN": access})
    assert r.status_code == 401 and r.json() == FAILED
    r = anon_client.post(V_ACCESS, json={"api_access_token": access, "user_id": uid})
    assert r.status_code == 200 and r.json()["token_status"] == "EXPIRED"


def test_revoked_refresh_token_and_its_access_tokens(anon_client, db):
    uid, refresh = make_refresh(db, "bob", name="ci")
    access = exchange(anon_client, uid, refresh)
    db(lambda s: tokens.revoke_refresh_token(s, "bob", "ci"))
    r = anon_client.post(V_REFRESH, json={"refresh_token": refresh, "user_id": uid})
    assert r.status_code == 401 and r.json() == INVALID_REFRESH
    r = anon_client.post(CREATE, json={"refresh_token": refresh, "user_id": uid})
    assert r.status_code == 401
    r = anon_client.get(USERINFO, headers={"TOKEN": access})
    assert r.status_code == 401 and r.json() == FAILED
    r = anon_client.post(V_ACCESS, json={"api_access_token": access, "user_id": uid})
    assert r.status_code == 401


def test_disabled_user(anon_client, db):
    uid, refresh = make_refresh(db, "bob")
    access = exchange(anon_client, uid, refresh)
    db(lambda s: users.set_disabled(s, "bob", True))
    assert anon_client.get(USERINFO, headers={"TOKEN": access}).json() == FAILED
    assert anon_client.get(USERINFO, headers={"TOKEN": access}).status_code == 401
    r = anon_client.post(CREATE, json={"refresh_token": refresh, "user_id": uid})
    assert r.status_code == 401 and r.json() == INVALID_REFRESH
    db(lambda s: users.set_disabled(s, "bob", False))
    assert anon_client.get(USERINFO, headers={"TOKEN": access}).status_code == 200


def test_only_hashes_are_stored(anon_client, db):
    uid, refresh = make_refresh(db, "bob")
    access = exchange(anon_client, uid, refresh)

    async def dump(session):
        from sqlalchemy import select

        rows = list(await session.scalars(select(RefreshToken))) + list(await session.scalars(select(AccessToken)))
        return [repr(vars(r)) for r in rows]

    text = "\n".join(db(dump))
    assert refresh not in text and access not in text
    import hashlib

    assert hashlib.sha256(refresh.encode()).hexdigest() in text


# --------------------------------------------------------------------------- the TOKEN header


@pytest.mark.parametrize("name", ["TOKEN", "Token", "token", "tOkEn"])
def test_header_name_any_case(anon_client, admin_token, name):
    r = anon_client.get(USERS, headers={name: admin_token})
    assert r.status_code == 200, r.text


def test_missing_header(anon_client):
    for path in (USERS, USERINFO):
        r = anon_client.get(path)
        assert r.status_code == 401 and r.json() == NOT_PROVIDED
    r = anon_client.get(USERS, headers={"TOKEN": ""})
    assert r.status_code == 401 and r.json() == NOT_PROVIDED


@pytest.mark.parametrize("value", ["Bearer {t}", "bearer {t}", "{t}x", "nonsense", "Token {t}"])
def test_bad_header_values(anon_client, admin_token, value):
    r = anon_client.get(USERS, headers={"TOKEN": value.format(t=admin_token)})
    assert r.status_code == 401 and r.json() == FAILED


def test_authorization_header_is_not_a_token(anon_client, admin_token):
    r = anon_client.get(USERS, headers={"Authorization": f"Bearer {admin_token}"})
    assert r.status_code == 401 and r.json() == NOT_PROVIDED


def test_admin_route_forbids_non_admin(user_client, client, anon_client):
    r = user_client.get(USERS)
    assert r.status_code == 403
    assert "admin" in r.json()["detail"]
    assert user_client.get(USERINFO).status_code == 200
    r = client.get(USERS)
    assert r.status_code == 200
    assert {u["username"] for u in r.json()} >= {"admin", "alice"}
    assert all("password" not in k for u in r.json() for k in u)


def test_open_endpoints(anon_client):
    for path in ("/healthz", "/docs", "/openapi.json", "/redoc"):
        assert anon_client.get(path).status_code == 200, path


OPEN = {"/healthz", "/docs", "/openapi.json", "/redoc", "/docs/oauth2-redirect", V_REFRESH, CREATE, V_ACCESS,
        "/readyz", "/metrics"}  # probes and the Prometheus scrape: open by design (docs/observability.md)


def test_every_other_endpoint_needs_a_token(anon_client, client):
    """Future-proof: walks the OpenAPI paths, so a router added without auth fails here."""
    paths = client.get("/openapi.json").json()["paths"]
    checked = 0
    for path, ops in paths.items():
        if path in OPEN or path.rstrip("/") in {p.rstrip("/") for p in OPEN}:
            continue
        url = re.sub(r"\{[^}]+\}", "1", path)
        for method in ops:
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            r = anon_client.request(method.upper(), url, follow_redirects=False)
            assert r.status_code == 401 and r.json() == NOT_PROVIDED, (method, path, r.status_code)
            r = anon_client.request(method.upper(), url, headers={"TOKEN": "wrong"}, follow_redirects=False)
            assert r.status_code == 401 and r.json() == FAILED, (method, path, r.status_code)
            checked += 1
    assert checked >= 2


def test_client_fixtures(client, anon_client, user_client, admin_token, user_token):
    assert client.headers["TOKEN"] == admin_token
    assert client.get(USERINFO).json()["username"] == "admin"
    assert user_client.get(USERINFO).json()["username"] == "alice"
    assert anon_client.get(USERINFO).status_code == 401
    # An explicit header wins over the wrapper's.
    assert anon_client.get(USERINFO, headers={"TOKEN": user_token}).json()["username"] == "alice"
    assert client.headers["TOKEN"] == admin_token  # wrappers do not touch the shared client


# --------------------------------------------------------------------------- rate limit


def test_failed_exchanges_are_rate_limited(anon_client, db):
    uid, refresh = make_refresh(db, "bob")
    for _ in range(10):
        r = anon_client.post(CREATE, json={"refresh_token": "guess", "user_id": uid})
        assert r.status_code == 401
    r = anon_client.post(CREATE, json={"refresh_token": "guess", "user_id": uid})
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 300
    # While blocked even the right token is refused, on every token endpoint.
    for path in (V_REFRESH, CREATE):
        r = anon_client.post(path, json={"refresh_token": refresh, "user_id": uid})
        assert r.status_code == 429
    assert "guess" not in r.text and refresh not in r.text
    # Protected endpoints (TOKEN header) are not affected.
    assert anon_client.get("/healthz").status_code == 200


def test_successes_do_not_count(anon_client, db):
    uid, refresh = make_refresh(db, "bob")
    for _ in range(15):
        assert anon_client.post(V_REFRESH, json={"refresh_token": refresh, "user_id": uid}).status_code == 200


# --------------------------------------------------------------------------- secrets


def test_no_secret_in_logs_or_error_bodies(anon_client, db, caplog):
    caplog.set_level(logging.DEBUG)
    uid, refresh = make_refresh(db, "bob")
    access = exchange(anon_client, uid, refresh)
    bodies = []
    bodies.append(anon_client.post(CREATE, json={"refresh_token": refresh + "x", "user_id": uid}).text)
    bodies.append(anon_client.post(V_ACCESS, json={"api_access_token": access + "x", "user_id": uid}).text)
    bodies.append(anon_client.get(USERINFO, headers={"TOKEN": access + "x"}).text)
    bodies.append(anon_client.get(USERINFO, headers={"TOKEN": f"Bearer {access}"}).text)
    bodies.append(anon_client.post(CREATE, content=b"{" + refresh.encode(), headers={"Content-Type": "application/json"}).text)
    anon_client.get(USERINFO, headers={"TOKEN": access})
    for text in bodies:
        assert refresh not in text and access not in text
    assert refresh not in caplog.text and access not in caplog.text


ADMIN_ONLY = [
    ("POST", "/api/v1/filesystem/"),
    ("DELETE", "/api/v1/filesystem/1/"),
    ("POST", "/api/v1/bulk_metadata/file_upload/1/"),
    ("DELETE", "/sftp/clear-registry"),
]


@pytest.mark.parametrize("method,path", ADMIN_ONLY)
def test_admin_only_routes_of_other_routers(user_client, anon_client, method, path):
    """The issue's admin-only list, as the owning routers wire ``AdminUser``."""
    assert anon_client.request(method, path).status_code == 401
    r = user_client.request(method, path, json={"name": "x"})
    assert r.status_code == 403, r.text
    assert r.json() == {"detail": "This action requires an admin user."}
