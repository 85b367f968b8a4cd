"""Issue 11, item 3: codes that outlive the credential they protect. Every outstanding code of a
user ends when the password changes by any path, when the address it was mailed to leaves the
account, and when the account is disabled or deleted: a reset code mailed before the change
never sets the password after it."""

# ruff: noqa: F811 - the fixture imported from security_support is redefined as an argument

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import bcrypt
import pytest
from security_support import (
    NEW_PASSWORD,
    OWNER_PASSWORD,
    admin,
    create_user,
    form_token,
    gate_token,
    h,  # noqa: F401 - fixture
    newest_code,
    page_client,
    reset_code,
    reset_works,
    signs_in,
    uniq,
)
from sqlalchemy import func, select
from typer.testing import CliRunner

from sproutgate.cli import app as cli_app
from sproutgate.config import Settings
from sproutgate.domain.context import CallerContext
from sproutgate.domain.importing.service import SproutGateImporter
from sproutgate.services import build_services
from sproutgate.storage.models import VerificationCode
from support.harness import AppHarness, bearer

pytestmark = pytest.mark.both_engines

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sproutgate-sample"


async def add_secondary(h: AppHarness, auth: dict[str, str], address: str) -> None:
    r = await h.client.post("/api/auth/secondary-email/request", json={"email": address}, headers=auth)
    assert r.status_code == 200, r.text
    code = await newest_code(h, address, "secondary_code")
    r = await h.client.post(
        "/api/auth/secondary-email/verify", json={"email": address, "code": code}, headers=auth
    )
    assert r.status_code == 200, r.text


async def pending_secondary_code(h: AppHarness, auth: dict[str, str]) -> tuple[str, str]:
    """A secondary-address code asked for and not yet used: (address, code)."""
    address = f"{uniq('pend')}@example.org"
    r = await h.client.post("/api/auth/secondary-email/request", json={"email": address}, headers=auth)
    assert r.status_code == 200, r.text
    return address, await newest_code(h, address, "secondary_code")


async def secondary_code_works(h: AppHarness, auth: dict[str, str], address: str, code: str) -> bool:
    r = await h.client.post(
        "/api/auth/secondary-email/verify", json={"email": address, "code": code}, headers=auth
    )
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


# -- the password changes ----------------------------------------------------------------------
async def test_a_profile_password_change_ends_every_code(h):
    user = await create_user(h)
    auth = bearer(await gate_token(h, user["account"]))
    code = await reset_code(h, user["email"])
    address, pending = await pending_secondary_code(h, auth)
    r = await h.client.put(
        "/api/auth/profile", json={"password": NEW_PASSWORD, "currentPassword": OWNER_PASSWORD}, headers=auth
    )
    assert r.status_code == 200, r.text
    assert not await reset_works(h, user["email"], code)
    assert not await secondary_code_works(h, auth, address, pending)
    assert await signs_in(h, user["account"], NEW_PASSWORD)


async def test_a_password_change_with_the_runtime_token_ends_every_code(h):
    user = await create_user(h)
    r = await h.client.post(
        "/api/v1/auth/sessions", json={"email": user["email"], "password": OWNER_PASSWORD}
    )
    auth = bearer(r.json()["access_token"])
    code = await reset_code(h, user["email"])
    r = await h.client.put("/api/auth/profile", json={"password": NEW_PASSWORD}, headers=auth)
    assert r.status_code == 200, r.text
    assert not await reset_works(h, user["email"], code)


async def test_a_password_change_on_the_account_page_ends_every_code(h):
    user = await create_user(h)
    code = await reset_code(h, user["email"])
    async with page_client(h, user["account"]) as browser:
        token = await form_token(browser, "/account")
        r = await browser.post(
            "/account/password",
            data={"csrf_token": token, "current_password": OWNER_PASSWORD, "new_password": NEW_PASSWORD},
        )
        assert r.status_code == 303, r.text
    assert not await reset_works(h, user["email"], code)
    assert await signs_in(h, user["account"], NEW_PASSWORD)


async def test_a_reset_ends_the_other_codes_of_the_user(h):
    user = await create_user(h)
    auth = bearer(await gate_token(h, user["account"]))
    alt = f"{uniq('alt')}@example.org"
    await add_secondary(h, auth, alt)
    via_alt = await reset_code(h, alt)
    via_primary = await reset_code(h, user["email"])
    address, pending = await pending_secondary_code(h, auth)
    assert await reset_works(h, user["email"], via_primary, NEW_PASSWORD)
    assert not await reset_works(h, alt, via_alt)
    auth = bearer(await gate_token(h, user["account"], NEW_PASSWORD))
    assert not await secondary_code_works(h, auth, address, pending)
    assert await signs_in(h, user["account"], NEW_PASSWORD)


async def test_a_reset_on_the_sproutgate_face_ends_the_other_codes(h):
    user = await create_user(h)
    auth = bearer(await gate_token(h, user["account"]))
    alt = f"{uniq('alt')}@example.org"
    await add_secondary(h, auth, alt)
    via_alt = await reset_code(h, alt)
    r = await h.client.post(
        "/api/auth/forgot-password", json={"account": user["account"], "email": user["email"]}
    )
    assert r.status_code == 200, r.text
    code = await newest_code(h, user["email"], "reset_code")
    r = await h.client.post(
        "/api/auth/reset-password",
        json={"account": user["account"], "code": code, "newPassword": NEW_PASSWORD},
    )
    assert r.status_code == 200, r.text
    assert not await reset_works(h, alt, via_alt)
    assert await signs_in(h, user["account"], NEW_PASSWORD)


async def test_an_administrators_new_password_ends_every_code(h):
    user = await create_user(h)
    code = await reset_code(h, user["email"])
    r = await h.client.put(
        f"/api/admin/users/{user['account']}", json={"password": NEW_PASSWORD}, headers=admin(h)
    )
    assert r.status_code == 200, r.text
    assert not await reset_works(h, user["email"], code)
    assert await signs_in(h, user["account"], NEW_PASSWORD)


async def test_other_admin_changes_leave_the_codes_alone(h):
    user = await create_user(h)
    code = await reset_code(h, user["email"])
    r = await h.client.put(
        f"/api/admin/users/{user['account']}", json={"level": 3, "bio": "x"}, headers=admin(h)
    )
    assert r.status_code == 200, r.text
    assert await reset_works(h, user["email"], code)


# -- the address leaves the account ------------------------------------------------------------
async def test_a_primary_address_replaced_by_an_administrator_ends_its_codes(h):
    user = await create_user(h)
    auth = bearer(await gate_token(h, user["account"]))
    alt = f"{uniq('alt')}@example.org"
    await add_secondary(h, auth, alt)
    old_primary = await reset_code(h, user["email"])
    still_mine = await reset_code(h, alt)
    new_primary = f"{uniq('new')}@example.com"
    r = await h.client.put(
        f"/api/admin/users/{user['account']}", json={"email": new_primary}, headers=admin(h)
    )
    assert r.status_code == 200, r.text
    assert not await reset_works(h, user["email"], old_primary)
    assert await reset_works(h, alt, still_mine, NEW_PASSWORD)  # that address is still the user's


async def test_a_secondary_address_dropped_by_an_administrator_ends_its_codes(h):
    user = await create_user(h)
    auth = bearer(await gate_token(h, user["account"]))
    alt = f"{uniq('alt')}@example.org"
    await add_secondary(h, auth, alt)
    code = await reset_code(h, alt)
    r = await h.client.put(
        f"/api/admin/users/{user['account']}", json={"secondaryEmails": []}, headers=admin(h)
    )
    assert r.status_code == 200, r.text
    assert not await reset_works(h, alt, code)
    # Even once the address belongs to someone else, the old code sets nobody's password.
    other = await create_user(h)
    await add_secondary(h, bearer(await gate_token(h, other["account"])), alt)
    assert not await reset_works(h, alt, code)
    assert await signs_in(h, other["account"], OWNER_PASSWORD)


async def test_a_secondary_address_the_user_removes_ends_its_codes(h):
    user = await create_user(h)
    auth = bearer(await gate_token(h, user["account"]))
    alt = f"{uniq('alt')}@example.org"
    await add_secondary(h, auth, alt)
    code = await reset_code(h, alt)
    primary = await reset_code(h, user["email"])
    r = await h.client.post("/api/auth/secondary-email/remove", json={"email": alt}, headers=auth)
    assert r.status_code == 200, r.text
    assert not await reset_works(h, alt, code)
    assert await reset_works(h, user["email"], primary, NEW_PASSWORD)  # other addresses' codes stay


# -- the account is disabled or deleted --------------------------------------------------------
async def test_disabling_ends_every_code_and_enabling_again_does_not_revive_them(h):
    user = await create_user(h)
    code = await reset_code(h, user["email"])
    for disabled in (True, False):
        r = await h.client.put(
            f"/api/admin/users/{user['account']}", json={"disabled": disabled}, headers=admin(h)
        )
        assert r.status_code == 200, r.text
    assert not await reset_works(h, user["email"], code)
    assert await signs_in(h, user["account"], OWNER_PASSWORD)


async def test_disabling_in_the_admin_console_ends_every_code(h):
    user = await create_user(h)
    code = await reset_code(h, user["email"])
    async with h.new_client() as console:
        token = await form_token(console, "/admin")
        r = await console.post(
            "/admin/login", data={"csrf_token": token, "token": h.services.admin_guard.token}
        )
        assert r.status_code == 303, r.text
        token = await form_token(console, f"/admin/users/{user['account']}")
        r = await console.post(
            f"/admin/users/{user['account']}",
            data={"csrf_token": token, "level": "0", "sprout_coins": "0", "role": "user", "disabled": "on"},
        )
        assert r.status_code == 303, r.text
    r = await h.client.put(f"/api/admin/users/{user['account']}", json={"disabled": False}, headers=admin(h))
    assert r.status_code == 200
    assert not await reset_works(h, user["email"], code)


async def test_deleting_ends_every_code(make_harness, make_settings):
    # No hold on deleted addresses here (SPROUTGATE_DELETED_ACCOUNT_HOLD_SECONDS=0), so that the
    # address can sign up anew while the old code would still be in time.
    h = await make_harness(
        make_settings(
            limit_code_mail_per_address="100/minute",
            admin_token="takeover-admin-token",
            deleted_account_hold_seconds=0,
        )
    )
    user = await create_user(h)
    code = await reset_code(h, user["email"])
    r = await h.client.delete(f"/api/admin/users/{user['account']}", headers=admin(h))
    assert r.status_code == 200, r.text
    again = await create_user(h, email=user["email"])  # the address signs up anew
    assert not await reset_works(h, user["email"], code)
    assert await signs_in(h, again["account"], OWNER_PASSWORD)


# -- the import --------------------------------------------------------------------------------
def legacy_copy(tmp_path: Path) -> Path:
    target = tmp_path / "legacy" / "data"
    shutil.copytree(SAMPLE, target)
    return target


def edit_record(legacy: Path, name: str, **changes: object) -> None:
    path = legacy / "users" / f"{name}.json"
    record = json.loads(path.read_text())
    record.update(changes)
    path.write_text(json.dumps(record))


@pytest.mark.parametrize("change", ["password", "disabled"])
async def test_an_import_update_that_sets_the_password_or_disables_ends_every_code(h, tmp_path, change):
    services = h.services
    importer = SproutGateImporter(services.settings, services.db, services.hasher, services.clock)
    legacy = legacy_copy(tmp_path)
    await importer.run(legacy)
    carol = "carol@example.com"
    code = await reset_code(h, carol)
    if change == "password":
        edit_record(legacy, "carol", password=bcrypt.hashpw(b"Changed#there2026", bcrypt.gensalt(4)).decode())
    else:
        edit_record(legacy, "carol", disabled=True)
    report = await importer.run(legacy, update=True)
    assert {o.account: o.action for o in report.outcomes}["carol"] == "updated"
    if change == "disabled":
        r = await h.client.put("/api/admin/users/carol", json={"disabled": False}, headers=admin(h))
        assert r.status_code == 200
    assert not await reset_works(h, carol, code)


def test_the_cli_import_ends_the_codes_of_a_password_it_replaces(tmp_path, monkeypatch):
    for key in list(os.environ):
        if key.startswith("SPROUTGATE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SPROUTGATE_DATA_DIR", str(tmp_path / "cli-data"))
    monkeypatch.setenv("SPROUTGATE_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("SPROUTGATE_ARGON2_MEMORY_KIB", "1024")
    legacy = legacy_copy(tmp_path)
    runner = CliRunner()
    r = runner.invoke(cli_app, ["import-sproutgate", str(legacy)])
    assert r.exit_code == 0, r.output

    def with_services(work):  # type: ignore[no-untyped-def]
        async def go():  # type: ignore[no-untyped-def]
            services = build_services(Settings.load())
            try:
                return await work(services)
            finally:
                await services.db.dispose()

        return asyncio.run(go())

    async def ask_for_a_reset(services):  # type: ignore[no-untyped-def]
        await services.accounts.request_password_reset("carol@example.com", CallerContext(ip="10.9.8.7"))

    async def codes(services):  # type: ignore[no-untyped-def]
        async with services.db.read() as s:
            return (await s.execute(select(func.count()).select_from(VerificationCode))).scalar_one()

    with_services(ask_for_a_reset)
    assert with_services(codes) == 1
    edit_record(legacy, "carol", password=bcrypt.hashpw(b"Changed#there2026", bcrypt.gensalt(4)).decode())
    r = runner.invoke(cli_app, ["import-sproutgate", str(legacy), "--update"])
    assert r.exit_code == 0, r.output
    assert "updated   carol.json (carol): password" in r.output
    assert with_services(codes) == 0
