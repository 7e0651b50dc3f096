"""The UI's security rules over plain HTTP (TestClient): cookies, CSRF, expiry, redirects, roles."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from urllib.parse import unquote

import pytest

from fileregistry.web.security import safe_next
from fileregistry.web.session import COOKIE

from .conftest import ADMIN, ADMIN_PW, USER, USER_PW, csrf_of, login

WEB = Path(__file__).resolve().parents[2] / "src" / "fileregistry" / "web"


def _cookie_header(response) -> str:
    headers = [v for k, v in response.headers.multi_items() if k.lower() == "set-cookie" and v.startswith(COOKIE)]
    assert headers, "no session cookie set"
    return headers[-1]


def test_cookie_flags(ui_client):
    r = ui_client.get("/ui/login")
    anon = _cookie_header(r).lower()
    assert "httponly" in anon and "samesite=lax" in anon and "path=/ui" in anon
    r = login(ui_client)
    assert r.status_code == 303 and r.headers["location"] == "/ui/"
    signed_in = _cookie_header(r).lower()
    assert "httponly" in signed_in and "samesite=lax" in signed_in and "path=/ui" in signed_in
    max_age = int(re.search(r"max-age=(\d+)", signed_in).group(1))
    assert 11 * 3600 < max_age <= 12 * 3600
    assert "secure" not in signed_in  # plain http here; https requests get Secure
    r = ui_client.get("/ui/sources")
    assert r.status_code == 200 and ADMIN in r.text
    # Pages say where scripts may come from (only here) and are not cached or framed.
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"


def test_csrf_is_checked_on_every_post(ui_client):
    page = ui_client.get("/ui/login")
    token = csrf_of(page.text)
    r = ui_client.post("/ui/login", data={"username": ADMIN, "password": ADMIN_PW})
    assert r.status_code == 403 and "Form expired" in r.text
    r = ui_client.post("/ui/login", data={"username": ADMIN, "password": ADMIN_PW, "csrf": token + "x"})
    assert r.status_code == 403
    assert login(ui_client).status_code == 303
    r = ui_client.post("/ui/logout", data={"csrf": token}, follow_redirects=False)  # the pre-login token
    assert r.status_code == 403
    assert ui_client.get("/ui/jobs").status_code == 200  # still signed in
    fresh = csrf_of(ui_client.get("/ui/jobs").text)
    assert fresh != token  # a new token at sign-in: no fixation
    r = ui_client.post("/ui/logout", headers={"X-CSRF-Token": fresh}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    r = ui_client.get("/ui/jobs", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")


def test_cross_site_form_post_is_refused(ui_client):
    """A form on another site posting with the victim's cookie: no valid token, no action."""
    assert login(ui_client).status_code == 303
    r = ui_client.post("/ui/sources/any/scan", data={"back": "/ui/sources"},
                       headers={"Origin": "https://evil.example", "Referer": "https://evil.example/x"})
    assert r.status_code == 403


def _set_cookie(client, value: str) -> None:
    """Replace the session cookie in the client's jar (same domain and path as the server set)."""
    old = next(c for c in client.cookies.jar if c.name == COOKIE)
    client.cookies.jar.clear(old.domain, old.path, old.name)
    client.cookies.set(COOKIE, value, domain=old.domain, path=old.path)


def _forge(ui_client, app, **changes) -> None:
    codec = app.state.ui_session_codec
    session = codec.loads(ui_client.cookies.get(COOKIE))
    for k, v in changes.items():
        setattr(session, k, v)
    _set_cookie(ui_client, codec.dumps(session))


def test_expired_session_goes_to_login_keeping_the_page(ui_client, ui_app):
    assert login(ui_client).status_code == 303
    _forge(ui_client, ui_app, expires_at=time.time() - 5)
    r = ui_client.get("/ui/jobs?status=failed", follow_redirects=False)
    assert r.status_code == 303
    loc = r.headers["location"]
    assert loc.startswith("/ui/login?next=") and unquote(loc.split("next=", 1)[1]) == "/ui/jobs?status=failed"
    r = ui_client.get(loc)
    assert "Your session has expired" in r.text
    assert 'name="next" value="/ui/jobs?status=failed"' in r.text
    r = ui_client.post("/ui/login", data={"username": ADMIN, "password": ADMIN_PW, "csrf": csrf_of(r.text),
                                          "next": "/ui/jobs?status=failed"}, follow_redirects=False)
    assert r.headers["location"] == "/ui/jobs?status=failed"


def test_tampered_session_goes_to_login(ui_client):
    assert login(ui_client).status_code == 303
    value = ui_client.cookies.get(COOKIE)
    # Flip one character of the payload: the signature no longer matches.
    i = 5
    tampered = value[:i] + ("A" if value[i] != "A" else "B") + value[i + 1:]
    _set_cookie(ui_client, tampered)
    r = ui_client.get("/ui/fs", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=/ui/fs"
    # A cookie signed with another key (another server) is no better.
    from fileregistry.web.session import SessionCodec, UISession

    other = SessionCodec(b"x" * 32, 3600)
    s = UISession()
    s.sign_in(ui_client.users.admin_id, "", 3600)
    _set_cookie(ui_client, other.dumps(s))
    r = ui_client.get("/ui/fs", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/ui/", "/\\evil.example", "\\\\evil.example", "/ui/../../etc",
    "/ui/%2e%2e/x", "javascript:alert(1)", "/uix", "/ui@evil.example", "http:/ui/", "/ui/\r\nLocation: x", "",
    "/ui/login", "/sftp/status",
])
def test_open_redirect_rejected(target):
    assert safe_next(target) == "/ui/"


@pytest.mark.parametrize("target", ["/ui/", "/ui/jobs?status=failed", "/ui/fs/1?path=/var/log", "/ui"])
def test_local_next_kept(target):
    assert safe_next(target) == target


def test_open_redirect_attempt_after_login(ui_client):
    for target in ("https://evil.example/", "//evil.example", "/\\evil.example"):
        ui_client.cookies.clear()
        r = login(ui_client, next_url=target)
        assert r.status_code == 303 and r.headers["location"] == "/ui/", target
    ui_client.cookies.clear()
    page = ui_client.get("/ui/login?next=//evil.example")
    assert "evil" not in page.text


def test_non_admin_cannot_post_admin_actions(ui_client):
    r = login(ui_client, USER, USER_PW)
    assert r.status_code == 303
    token = csrf_of(ui_client.get("/ui/sources").text)
    r = ui_client.post("/ui/sources/anything/scan", data={"csrf": token})
    assert r.status_code == 403 and "requires an admin" in r.text
    r = ui_client.post("/ui/sources/anything/files/1/move", data={"csrf": token, "to": "processing",
                                                                   "confirmed": "yes"})
    assert r.status_code == 403
    # An admin gets past the role check (here: to the server's own error about the unknown source).
    ui_client.cookies.clear()
    assert login(ui_client).status_code == 303
    token = csrf_of(ui_client.get("/ui/sources").text)
    r = ui_client.post("/ui/sources/anything/scan", data={"csrf": token, "back": "/ui/sources"})
    assert r.status_code == 200 and "SFTP source &#39;anything&#39; not found" in r.text


def test_login_failures_look_alike_and_are_rate_limited(ui_settings):
    from fastapi.testclient import TestClient

    from fileregistry.app import create_app

    from .conftest import make_ui_users

    app = create_app(ui_settings.model_copy(update={"auth_max_failures": 3}))
    with TestClient(app) as c:
        asyncio.run(make_ui_users(app.state.settings))
        answers = []
        for username, password in ((ADMIN, "nope"), ("nobody", ADMIN_PW), (USER, ADMIN_PW)):
            r = c.post("/ui/login", data={"username": username, "password": password,
                                          "csrf": csrf_of(c.get("/ui/login").text)})
            assert r.status_code == 401
            answers.append(re.search(r'role="alert">(.*?)</div>', r.text, re.DOTALL).group(1))
        assert len(set(answers)) == 1 and "Invalid username or password." in answers[0]
        # The 4th try from this address is refused, even with the right password.
        r = c.post("/ui/login", data={"username": ADMIN, "password": ADMIN_PW, "csrf": csrf_of(c.get("/ui/login").text)})
        assert r.status_code == 429 and "Too many failed sign-in attempts" in r.text
        assert int(r.headers["retry-after"]) > 0


def test_disabled_user_is_signed_out(ui_client, ui_app):
    from fileregistry.auth import users
    from fileregistry.db import unit_of_work

    assert login(ui_client, USER, USER_PW).status_code == 303
    assert ui_client.get("/ui/sources").status_code == 200

    async def disable():
        async with unit_of_work(ui_app.state.sessions) as s:
            await users.set_disabled(s, USER, True)

    ui_client.portal.call(disable)
    r = ui_client.get("/ui/sources", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")
    r = login(ui_client, USER, USER_PW)
    assert r.status_code == 401  # and cannot sign in again


def test_users_without_password_cannot_sign_in(ui_client, ui_app):
    from fileregistry.auth import users
    from fileregistry.db import unit_of_work

    async def make():
        async with unit_of_work(ui_app.state.sessions) as s:
            await users.create_user(s, "tokenonly")

    ui_client.portal.call(make)
    assert login(ui_client, "tokenonly", "").status_code in (401, 400)
    assert login(ui_client, "tokenonly", "anything").status_code == 401


def test_error_pages_and_front_door(ui_client):
    assert login(ui_client).status_code == 303
    r = ui_client.get("/ui/fs/999")
    assert r.status_code == 404 and "file system 999 not found" in r.text and "<html" in r.text
    r = ui_client.get("/ui/jobs/999")
    assert r.status_code == 404 and "job 999 not found" in r.text
    r = ui_client.get("/ui/sources/nope")
    assert r.status_code == 404 and "SFTP source &#39;nope&#39; not found" in r.text
    r = ui_client.get("/ui/sources/nope/files/abc")
    assert r.status_code == 400
    r = ui_client.get("/", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/ui/"
    # The API is untouched: no cookie makes an API call work, and API errors stay JSON.
    r = ui_client.get("/api/v1/filesystem/")
    assert r.status_code == 401 and r.json() == {"detail": "Authentication credentials were not provided."}


def test_static_assets_are_local():
    """No page or asset refers to another origin (no CDN, no web font, no analytics)."""
    for path in list((WEB / "templates").rglob("*")) + list((WEB / "static").rglob("*")):
        if path.is_file():
            text = path.read_text()
            assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE) or path.suffix == ".svg", path
            if path.suffix == ".svg":
                assert re.findall(r"https?://[^\"' ]+", text) == ["http://www.w3.org/2000/svg"], path


def test_static_files_served(ui_client):
    r = ui_client.get("/ui/static/app.css")
    assert r.status_code == 200 and "text/css" in r.headers["content-type"]
    r = ui_client.get("/ui/static/app.js")
    assert r.status_code == 200


@pytest.mark.sshd
def test_moves_confirm_without_script_and_show_server_errors(ui_client, ui_app, sshd):
    """Without JavaScript a move asks on a page of its own; a move the server refuses shows its error."""
    from sftp.helpers import Zone

    from fileregistry.db import unit_of_work
    from fileregistry.sftp import registry
    from fileregistry.sftp.schemas import SFTPConfig
    from fileregistry.sources import service

    zone = Zone(sshd, ui_app.state.settings.resolved_mirror_dir)
    state = ui_app.state

    async def seed():
        await service.put_source(state.sessions, state.cipher, "zone", SFTPConfig.model_validate(zone.cfg), None)
        async with unit_of_work(state.sessions) as s:  # registered, but not on the server
            await registry.register_new(s, zone.key, [("ghost.csv", 3, None)])
            return (await registry.find(s, zone.key, "new", "ghost.csv")).id

    file_id = ui_client.portal.call(seed)
    assert login(ui_client).status_code == 303
    token = csrf_of(ui_client.get("/ui/sources/zone").text)
    url = f"/ui/sources/zone/files/{file_id}/move"
    r = ui_client.post(url, data={"csrf": token, "to": "processing", "back": "/ui/sources/zone"})
    assert r.status_code == 200 and "Move ghost.csv?" in r.text and 'name="confirmed" value="yes"' in r.text
    r = ui_client.post(url, data={"csrf": token, "to": "completed", "confirmed": "yes"})
    assert "ghost.csv is new; it can move to processing, not completed." in r.text
    r = ui_client.post(url, data={"csrf": token, "to": "processing", "confirmed": "yes",
                                  "back": "/ui/sources/zone"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/sources/zone"
    page = ui_client.get("/ui/sources/zone")
    banner = re.search(r'class="flash flash-error".*?<span class="flash-text">(.*?)</span>', page.text, re.DOTALL)
    assert banner and "ghost.csv" in banner.group(1), page.text[:3000]
    assert 'data-file="ghost.csv"' in page.text  # still new: nothing moved
