"""The UI in a real browser (headless Chromium via Playwright) against a live uvicorn server.

Each test clicks through as a person would and checks what the page says, not only statuses.
Screenshots of the main pages go to ``test-artifacts/screenshots/`` (1280x800).
"""

from __future__ import annotations

import re
import time

import orjson
import pytest
from sftp.helpers import Zone

from .conftest import ADMIN, ADMIN_PW, USER, USER_PW, shot

BAD_LINES = (
    b'{"path": "/", "name": "data", "is_directory": true}\n'
    b'{"path": "/data", "name": "ok.csv", "is_directory": false, "size_in_bytes": 10}\n'
    b'{"path": "/data", "name": "bad.csv", "is_directory": "yes"}\n'
    b'{"path": "/data", "name": "neg.csv", "is_directory": false, "size_in_bytes": -5}\n'
    b'not json at all\n'
)


def sign_in(page, base: str, username: str = ADMIN, password: str = ADMIN_PW) -> None:
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button:has-text('Sign in')")


def wait_job(api, job_id: int) -> dict:
    deadline = time.monotonic() + 60
    while True:
        body = api.get("/api/v1/bulk_metadata/job/", params={"id": job_id}).json()
        if body["status"] != "running":
            return body
        assert time.monotonic() < deadline
        time.sleep(0.1)


def confirm_dialog(page) -> None:
    dialog = page.locator("#confirm-dialog")
    dialog.wait_for(state="visible")
    dialog.locator("button:has-text('Confirm')").click()


@pytest.mark.sshd
def test_sources_click_through(live, page, sshd, ui_settings):
    server, users = live
    zone = Zone(sshd, ui_settings.resolved_mirror_dir)
    for i in range(12):
        zone.put(f"invoice_{i:02d}.csv", b"i" * (100 * (i + 1)), mtime=1_700_000_000 + i * 60)
    zone.put("report_2024.csv", b"r" * 5000, mtime=1_700_100_000)
    zone.put("report_50%_off.txt", b"p" * 42, mtime=1_700_100_060)
    zone.put("report_5000_off.txt", b"q" * 43, mtime=1_700_100_120)  # '%' must not match as a wildcard
    with server.api(users.admin_token) as api:
        r = api.put("/generic/sftp-config/partner-acme", json={"config": zone.cfg, "scan_interval_seconds": None})
        assert r.status_code == 200, r.text
        broken = dict(zone.cfg, remote_path=str(zone.path) + "-missing")
        r = api.put("/generic/sftp-config/partner-broken", json={"config": broken, "scan_interval_seconds": 3600})
        assert r.status_code == 200, r.text

    # Not signed in: the login page, remembering where we were going.
    page.goto(server.url + "/ui/sources/partner-acme?state=new")
    assert "/ui/login" in page.url and "next=" in page.url
    shot(page, "01-login")
    sign_in(page, server.url, ADMIN, "wrong password")
    page.get_by_text("Invalid username or password.").wait_for()
    sign_in(page, server.url)
    page.wait_for_url(re.compile(r"/ui/sources/partner-acme\?state=new$"))
    page.get_by_text("No files are new.").wait_for()

    # Scan now (admin): the files the sshd holds are registered and listed.
    page.click("button:has-text('Scan now')")
    page.get_by_text("Scanned partner-acme").wait_for()
    assert "15 listed, 15 new" in page.inner_text(".flash-success")
    assert page.locator("table.files tbody tr").count() == 15

    # The failing source's scan shows the server's error, and the overview singles it out.
    page.goto(server.url + "/ui/sources/partner-broken")
    page.click("button:has-text('Scan now')")
    page.locator(".flash-error").first.wait_for()
    assert "not found" in page.inner_text(".flash-error >> nth=0")
    shot(page, "11-source-failing")
    page.click("nav.mainnav >> text=Sources")
    broken_row = page.locator("tr[data-source='partner-broken']")
    assert "failing" in broken_row.inner_text()
    assert "row-failing" in (broken_row.get_attribute("class") or "")
    acme = page.locator("tr[data-source='partner-acme']")
    assert "15" in acme.locator("td").nth(1).inner_text()  # new
    assert "15 listed, 15 new" in acme.inner_text()
    shot(page, "02-sources")

    # One source: filter by state, search (literally: % is not a wildcard), sort by size.
    acme.locator("a.strong").click()
    page.wait_for_url(re.compile(r"/ui/sources/partner-acme$"))
    page.fill("input[name=q]", "report")
    page.press("input[name=q]", "Enter")
    page.wait_for_url(re.compile(r"q=report"))
    names = page.locator("table.files tbody tr").evaluate_all("rows => rows.map(r => r.dataset.file)")
    assert sorted(names) == sorted(["report_2024.csv", "report_5000_off.txt", "report_50%_off.txt"])
    page.fill("input[name=q]", "50%")
    page.press("input[name=q]", "Enter")
    page.wait_for_url(re.compile(r"q=50%25"))
    names = page.locator("table.files tbody tr").evaluate_all("rows => rows.map(r => r.dataset.file)")
    assert names == ["report_50%_off.txt"]
    page.click("a:has-text('Clear')")
    page.select_option("select[name=sort]", "size")  # applies at once (progressive enhancement)
    page.wait_for_url(re.compile(r"sort=size"))
    first = page.locator("table.files tbody tr").first
    assert first.get_attribute("data-file") == "report_2024.csv"  # the largest
    shot(page, "03-source-files")

    # Move a file to processing (confirmed in a dialog), then find it under Processing.
    page.click(".segmented >> text=New")
    page.wait_for_url(re.compile(r"state=new"))
    row = page.locator("tr[data-file='invoice_00.csv']")
    row.locator("button:has-text('Start processing')").click()
    page.locator("#confirm-dialog").wait_for(state="visible")
    shot(page, "12-confirm-dialog")
    confirm_dialog(page)
    page.get_by_text("File invoice_00.csv moved to processing.").wait_for()
    assert page.locator("tr[data-file='invoice_00.csv']").count() == 0
    page.click(".segmented >> text=Processing")
    page.wait_for_url(re.compile(r"state=processing"))
    moved = page.locator("table.files tbody tr")
    assert moved.count() == 1
    new_name = moved.first.get_attribute("data-file")
    assert re.fullmatch(r"invoice_00_\d{14}\.csv", new_name)
    assert (zone.path / "processing" / new_name).exists() and not (zone.path / "new" / "invoice_00.csv").exists()

    # Its history, then finish it from its own page.
    moved.first.locator("a.strong").click()
    page.locator("[data-testid=history]").wait_for()
    history = page.inner_text("[data-testid=history]")
    assert "Registered as" in history and "new" in history and "processing" in history
    assert f"renamed invoice_00.csv → {new_name}" in history
    page.click("button:has-text('Mark completed')")
    confirm_dialog(page)
    page.get_by_text(f"File {new_name} moved to completed.").wait_for()
    history = page.inner_text("[data-testid=history]")
    assert history.index("completed") < history.index("Registered as")  # newest first
    assert page.locator("h1 .pill").inner_text() == "completed"
    shot(page, "04-file-history")

    # Scan history tab.
    page.click(".breadcrumbs >> text=partner-acme")
    page.click(".tabs >> text=Scan history")
    scans = page.inner_text("[data-testid=scans]")
    assert "ui" in scans and "OK" in scans
    shot(page, "05-scan-history")


@pytest.mark.sshd
def test_non_admin_sees_no_admin_actions(live, page, sshd, ui_settings):
    server, users = live
    zone = Zone(sshd, ui_settings.resolved_mirror_dir)
    zone.put("a.csv", b"a")
    with server.api(users.admin_token) as api:
        assert api.put("/generic/sftp-config/zone-a", json={"config": zone.cfg}).status_code == 200
        assert api.post("/sftp/scan", params={"source": "zone-a"}).status_code == 200
    page.goto(server.url + "/ui/login")
    sign_in(page, server.url, USER, USER_PW)
    page.wait_for_url(re.compile(r"/ui/sources$"))
    page.click("text=zone-a")
    page.locator("tr[data-file='a.csv']").wait_for()
    assert page.locator("button:has-text('Scan now')").count() == 0
    assert page.locator("button:has-text('Start processing')").count() == 0
    # Sign out: back to the login page; the registry is no longer reachable.
    page.click("button:has-text('Sign out')")
    page.get_by_text("You are signed out.").wait_for()
    page.goto(server.url + "/ui/sources")
    assert "/ui/login" in page.url


def test_file_systems_click_through(live, page):
    server, users = live
    tree = [
        {"path": "/", "name": "var", "is_directory": True, "owner": "root", "group": "root", "permission_bits": 755},
        {"path": "/var", "name": "log", "is_directory": True, "owner": "root", "group": "adm"},
        {"path": "/var/log", "name": "mail.log", "is_directory": False, "owner": "root", "group": "adm",
         "permission_bits": 640, "size_in_bytes": 28776, "ts_last_modified": "2016-01-01 12:00:00",
         "storage_type": 3},
    ]
    tree += [{"path": "/big", "name": f"f{i:04d}.dat", "is_directory": False, "size_in_bytes": i} for i in range(230)]
    lines = [orjson.dumps(item) + b"\n" for item in tree]
    with server.api(users.admin_token) as api:
        fs_id = api.post("/api/v1/filesystem/", json={"name": "hdfs-prod"}).json()["id"]
        ok = api.post(f"/api/v1/bulk_metadata/file_upload/{fs_id}/", content=b"".join(lines))
        assert wait_job(api, ok.json()["job"]["id"])["status"] == "successful"
        bad = api.post(f"/api/v1/bulk_metadata/file_upload/{fs_id}/", content=BAD_LINES)
        bad_id = bad.json()["job"]["id"]
        assert wait_job(api, bad_id)["status"] == "failed"

    page.goto(server.url + "/ui/fs")
    sign_in(page, server.url)
    page.wait_for_url(re.compile(r"/ui/fs$"))
    assert "failed" in page.inner_text("table")  # the latest upload
    page.click("a:has-text('hdfs-prod')")
    tree = page.locator("[data-testid=tree]")
    tree.locator("tr[data-path='/var']").wait_for()
    url_before = page.url

    # Lazy tree: expanding /var fetches its children into the table, without leaving the page.
    tree.locator("tr[data-path='/var'] .tree-toggle").click()
    tree.locator("tr[data-path='/var/log']").wait_for()
    tree.locator("tr[data-path='/var/log'] .tree-toggle").click()
    tree.locator("tr[data-path='/var/log/mail.log']").wait_for()
    assert page.url == url_before
    assert "rw-r-----" in tree.locator("tr[data-path='/var/log/mail.log']").inner_text()
    shot(page, "06-fs-tree")
    tree.locator("tr[data-path='/var'] .tree-toggle").click()  # collapse
    assert tree.locator("tr[data-path='/var/log/mail.log']").count() == 0

    # A big directory pages (100 per page, by name), and jump-to-name works.
    tree.locator("tr[data-path='/big'] a.entry-link").click()
    page.wait_for_url(re.compile(r"path=%2Fbig"))
    assert tree.locator("tbody tr.tree-row").count() == 100
    assert tree.locator("tbody tr.tree-row").first.get_attribute("data-path") == "/big/f0000.dat"
    page.click("a:has-text('Next page')")
    page.wait_for_url(re.compile(r"after="))
    assert tree.locator("tbody tr.tree-row").first.get_attribute("data-path") == "/big/f0100.dat"
    page.fill("input[name=start]", "f0225")
    page.press("input[name=start]", "Enter")
    page.wait_for_url(re.compile(r"start=f0225"))
    assert tree.locator("tbody tr.tree-row").first.get_attribute("data-path") == "/big/f0225.dat"
    assert tree.locator("tbody tr.tree-row").count() == 5

    # An entry's metadata.
    page.goto(server.url + f"/ui/fs/{fs_id}/entry?path=/var/log/mail.log")
    props = page.inner_text("dl.props")
    assert "28.1 KiB" in props and "28,776 bytes" in props and "rw-r-----" in props
    assert "2016-01-01 12:00:00 UTC" in props and "Glacier" in props and "adm" in props
    shot(page, "07-fs-entry")

    # The failed job: its counts and its line errors.
    page.click("nav.mainnav >> text=Jobs")
    page.click(f"a:has-text('#{bad_id}')")
    page.locator("[data-testid=issues]").wait_for()
    assert "Upload rejected" in page.inner_text(".job-msg")
    rows = page.locator("[data-testid=issues] tbody tr")
    lines_shown = rows.evaluate_all("rows => rows.map(r => r.cells[0].innerText.trim())")
    assert lines_shown[:3] == ["3", "4", "5"], lines_shown
    text = page.inner_text("[data-testid=issues]")
    assert "is_directory" in text and "size_in_bytes" in text
    shot(page, "08-job-errors")
    page.goto(server.url + "/ui/jobs")
    shot(page, "09-jobs")


def test_expired_session_returns_to_the_page(live, page):
    server, _users = live
    page.goto(server.url + "/ui/jobs")
    sign_in(page, server.url)
    page.wait_for_url(re.compile(r"/ui/jobs$"))
    # Forge the cookie's expiry by re-signing it with the server's key (as time passing would).
    codec = server.app.state.ui_session_codec
    cookie = next(c for c in page.context.cookies() if c["name"] == "fr_ui")
    session = codec.loads(cookie["value"])
    session.expires_at = time.time() - 1
    page.context.add_cookies([{**cookie, "value": codec.dumps(session)}])
    page.goto(server.url + "/ui/fs?x=1")
    assert "/ui/login" in page.url
    page.get_by_text("Your session has expired").wait_for()
    shot(page, "10-login-expired")
    sign_in(page, server.url)
    page.wait_for_url(re.compile(r"/ui/fs\?x=1$"))
