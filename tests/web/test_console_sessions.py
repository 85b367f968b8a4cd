"""Admin console sessions live on the server (issue 11, item 7): they end on sign-out (a copied
cookie stops working too), when the admin token is rotated or replaced by an import, after the
idle timeout and 8 hours after sign-in; the database holds only a hash of the cookie; over
HTTPS the cookie is ``__Host-sg_console`` (Secure, HttpOnly, SameSite, Path=/). In-process app;
the browser side is in test_pages_browser.py."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from sproutgate.domain.importing.service import SproutGateImporter
from sproutgate.storage.models import AdminConsoleSession

pytestmark = pytest.mark.both_engines

COOKIE = "sg_console"
SECURE_COOKIE = "__Host-sg_console"
EN = {"Accept-Language": "en"}
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sproutgate-sample"
AppHarness = Any  # tests/conftest.py's harness


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def shows_console(r: httpx.Response) -> bool:
    return r.status_code == 200 and 'action="/admin/logout"' in r.text and "<table" in r.text


def shows_sign_in(r: httpx.Response) -> bool:
    return 'name="token"' in r.text and 'action="/admin/logout"' not in r.text and "<table" not in r.text


async def open_console(
    h: AppHarness, client: httpx.AsyncClient | None = None
) -> tuple[httpx.AsyncClient, str]:
    """Sign in to the console with the admin token; returns the browser and its cookie value."""
    client = client or h.new_client(**EN)
    page = await client.get("/admin")
    assert shows_sign_in(page)
    r = await client.post(
        "/admin/login", data={"csrf_token": csrf_of(page.text), "token": h.services.admin_guard.token}
    )
    assert r.status_code == 303, r.text
    return client, client.cookies[COOKIE]


def holding(h: AppHarness, value: str) -> httpx.AsyncClient:
    """Another browser, elsewhere, with a copy of a console cookie."""
    client = h.new_client(**EN)
    client.cookies.set(COOKIE, value)
    return client


async def stored_sessions(h: AppHarness) -> list[AdminConsoleSession]:
    async with h.services.db.read() as s:
        return list((await s.execute(select(AdminConsoleSession))).scalars())


async def test_a_copied_console_cookie_stops_working_after_sign_out(make_harness, make_settings):
    h = await make_harness(make_settings(admin_token="console-test-admin-token"))
    admin, value = await open_console(h)
    copy = holding(h, value)
    assert shows_console(await copy.get("/admin"))
    # The database holds a hash of the cookie, never the cookie.
    [row] = await stored_sessions(h)
    assert row.token_hash == hashlib.sha256(value.encode()).hexdigest() and value not in repr(vars(row))

    page = await admin.get("/admin")
    r = await admin.post("/admin/logout", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303
    assert any(c.startswith(f"{COOKIE}=") and "Max-Age=0" in c for c in r.headers.get_list("set-cookie"))
    assert await stored_sessions(h) == []

    assert shows_sign_in(await copy.get("/admin"))
    assert shows_sign_in(await copy.get("/admin/audit"))
    # Nor does the copy act: a form posted with it meets the sign-in page and changes nothing.
    form = await copy.get("/admin")
    r = await copy.post(
        "/admin/users",
        data={
            "csrf_token": csrf_of(form.text),
            "account": "afterlogout",
            "email": "afterlogout@example.com",
            "password": "Sprout#2026pw",
        },
    )
    assert shows_sign_in(r)
    assert (await h.services.admin.list_users("afterlogout", 1, 10))[0] == 0


async def test_rotating_the_admin_token_ends_console_sessions(make_harness, make_settings):
    settings = make_settings()  # the admin token is generated into data/config/admin.json
    h = await make_harness(settings)
    old_token = h.services.admin_guard.token
    admin, value = await open_console(h)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPROUTGATE_")}
    env.update(SPROUTGATE_DATA_DIR=str(settings.data_dir), SPROUTGATE_DATABASE_URL=settings.database_url)
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "sproutgate", "admin-token", "--rotate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() not in ("", old_token)
    assert await stored_sessions(h) == []
    assert shows_sign_in(await admin.get("/admin"))
    assert shows_sign_in(await holding(h, value).get("/admin"))
    # The new token opens the console again.
    assert h.services.admin_guard.token == done.stdout.strip()
    again, _ = await open_console(h)
    assert shows_console(await again.get("/admin"))


async def test_a_token_changed_behind_the_servers_back_ends_console_sessions(make_harness, make_settings):
    settings = make_settings()
    h = await make_harness(settings)
    admin, _ = await open_console(h)
    # Written by hand (or by another tool): no row is deleted, yet the session was opened with
    # another token and counts no more.
    (settings.config_dir / "admin.json").write_text('{"token": "' + "n" * 43 + '"}')
    assert shows_sign_in(await admin.get("/admin"))


async def test_an_import_that_adopts_an_admin_token_ends_console_sessions(make_harness, make_settings):
    h = await make_harness(make_settings())
    admin, value = await open_console(h)
    s = h.services
    report = await SproutGateImporter(s.settings, s.db, s.hasher, s.clock).run(SAMPLE, update=True)
    assert report.admin_token.startswith("adopted")
    assert await stored_sessions(h) == []
    assert shows_sign_in(await admin.get("/admin"))
    assert shows_sign_in(await holding(h, value).get("/admin"))


async def test_console_sessions_end_after_30_idle_minutes_by_default(make_harness, make_settings):
    h = await make_harness(make_settings(admin_token="console-test-admin-token"))
    assert h.services.settings.console_idle_timeout_seconds == 1800
    admin, _ = await open_console(h)
    for _ in range(3):  # each use starts the idle time over
        h.clock.advance(1790)
        assert shows_console(await admin.get("/admin"))
    h.clock.advance(1801)
    assert shows_sign_in(await admin.get("/admin"))
    assert await stored_sessions(h) == []  # a dead session is deleted when it is seen


async def test_the_idle_timeout_is_a_setting_and_8_hours_is_the_limit(make_harness, make_settings):
    h = await make_harness(
        make_settings(admin_token="console-test-admin-token", console_idle_timeout_seconds=3600)
    )
    admin, _ = await open_console(h)
    for _ in range(8):  # 28,000 s in use, never idle for an hour
        h.clock.advance(3500)
        assert shows_console(await admin.get("/admin"))
    h.clock.advance(900)  # 8 h 15 min after sign-in, 15 minutes idle
    assert shows_sign_in(await admin.get("/admin"))

    other = await make_harness(
        make_settings(
            admin_token="console-test-admin-token",
            console_idle_timeout_seconds=60,
            data_dir=h.services.settings.data_dir.parent / "short",
        )
    )
    admin, _ = await open_console(other)
    other.clock.advance(61)
    assert shows_sign_in(await admin.get("/admin"))


async def test_expired_console_sessions_are_purged(make_harness, make_settings):
    from sproutgate.domain.housekeeping.service import purge_once

    h = await make_harness(make_settings(admin_token="console-test-admin-token"))
    await open_console(h)
    assert (await purge_once(h.services.db, h.clock))["console_sessions"] == 0
    h.clock.advance(1801)
    assert (await purge_once(h.services.db, h.clock))["console_sessions"] == 1
    async with h.services.db.read() as s:
        assert (await s.execute(select(func.count()).select_from(AdminConsoleSession))).scalar_one() == 0


@pytest.mark.parametrize("public_url", ["http://testserver", "https://testserver"])
async def test_the_console_cookie_is_host_prefixed_over_https(make_harness, make_settings, public_url):
    secure = public_url.startswith("https")
    h = await make_harness(make_settings(public_url=public_url, admin_token="console-test-admin-token"))
    transport = httpx.ASGITransport(app=h.app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url=public_url, headers=EN) as client:
        page = await client.get("/admin")
        r = await client.post(
            "/admin/login", data={"csrf_token": csrf_of(page.text), "token": "console-test-admin-token"}
        )
        assert r.status_code == 303
        [cookie] = [c for c in r.headers.get_list("set-cookie") if "_console=" in c]
        name, _, rest = cookie.partition("=")
        value = rest.split(";")[0]
        attributes = {a.strip().split("=")[0].lower() for a in rest.split(";")[1:]}
        assert name == (SECURE_COOKIE if secure else COOKIE)
        assert {"httponly", "path", "samesite"} <= attributes and "domain" not in attributes
        assert "Path=/;" in cookie or cookie.endswith("Path=/")
        assert ("secure" in attributes) is secure
        assert shows_console(await client.get("/admin"))

        # Only the name for this scheme counts: over HTTPS, a plain sg_console (which any
        # subdomain or plain-HTTP page could plant) is not read.
        client.cookies.clear()
        other_name = COOKIE if secure else SECURE_COOKIE
        r = await client.get("/admin", headers={"Cookie": f"{other_name}={value}"})
        assert shows_sign_in(r)
        r = await client.get("/admin", headers={"Cookie": f"{name}={value}"})
        assert shows_console(r)
