"""Fixtures of the web UI tests: users with passwords, a live uvicorn server, headless Chromium.

The browser is Debian's ``/usr/bin/chromium`` driven by Playwright for Python; Playwright's own
browser download is never used. Where Chromium or Playwright is missing the browser tests skip
with the reason (``scripts/test.sh`` installs Chromium as root), except under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from fileregistry.app import create_app
from fileregistry.config import Settings
from fileregistry.testing.sshd import free_port

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = os.environ.get("FILEREGISTRY_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--disable-dev-shm-usage",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
ADMIN, ADMIN_PW = "root", "correct horse battery staple"
USER, USER_PW = "alice", "alice-secret-pw"


@dataclass(frozen=True)
class UIUsers:
    admin_id: int
    admin_token: str  # API access token of ADMIN (for seeding data through the API)
    user_id: int


async def make_ui_users(settings: Settings) -> UIUsers:
    from fileregistry.auth import tokens, users
    from fileregistry.db import create_nullpool_engine, session_factory, unit_of_work

    engine = create_nullpool_engine(settings.resolved_database_url)
    try:
        async with unit_of_work(session_factory(engine)) as s:
            admin = await users.create_user(s, ADMIN, is_admin=True, password=ADMIN_PW)
            alice = await users.create_user(s, USER, password=USER_PW)
            tok = await tokens.issue_access_token_for(s, admin, lifetime=timedelta(hours=1))
            return UIUsers(admin.id, tok.token, alice.id)
    finally:
        await engine.dispose()


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: required, not skipped)")
    pytest.skip(reason)


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF field on the page"
    return m.group(1)


# --------------------------------------------------------------------------- TestClient (plain HTTP)


@pytest.fixture
def ui_settings(settings) -> Settings:
    return settings.model_copy(update={"scheduler_enabled": False})


@pytest.fixture
def ui_app(ui_settings):
    return create_app(ui_settings)


@pytest.fixture
def ui_client(ui_app):
    from fastapi.testclient import TestClient

    with TestClient(ui_app, base_url="http://testserver") as c:
        c.users = asyncio.run(make_ui_users(ui_app.state.settings))
        yield c


def login(client, username: str = ADMIN, password: str = ADMIN_PW, next_url: str = "") -> httpx.Response:
    page = client.get("/ui/login")
    return client.post("/ui/login", data={"username": username, "password": password, "csrf": csrf_of(page.text),
                                          "next": next_url}, follow_redirects=False)


# --------------------------------------------------------------------------- live server


class LiveServer:
    def __init__(self, app, port: int) -> None:
        import uvicorn

        self.app = app
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-ui-test", daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    def api(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"TOKEN": token}, timeout=60)


@pytest.fixture
def live(ui_settings) -> Iterator[tuple[LiveServer, UIUsers]]:
    server = LiveServer(create_app(ui_settings), free_port()).start()
    try:
        users = asyncio.run(make_ui_users(ui_settings))
        yield server, users
    finally:
        server.stop()


# --------------------------------------------------------------------------- browser


def _launch():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install -e '.[test]')")
    if not (os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"Chromium not found at {CHROMIUM} (scripts/test.sh installs it as root: apt-get install chromium)")
    return sync_playwright()


@pytest.fixture
def page(live):
    """A 1280x800 page of a fresh Chromium, started after the live server.

    Function-scoped on purpose: Playwright's sync API keeps an event loop running in this thread
    while it is active, and the database fixtures use ``asyncio.run`` (PostgreSQL's session
    database is made on first use), so the browser only lives inside the test itself.
    Playwright gives each launch a fresh temporary profile (no --user-data-dir needed).
    """
    with _launch() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(20_000)
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        # Console errors, except the browser's note on a page answered 4xx (a failed sign-in is a 401).
        pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and not msg.text.startswith(
            "Failed to load resource: the server responded with a status of 4") else None)
        try:
            yield pg
        finally:
            context.close()
            browser.close()
    assert not errors, f"JavaScript errors or CSP violations on the page: {errors}"


def shot(pg, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(Exception):
        pg.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)
