"""One way to each answer: a user is created the same way by sign-up, the admin API and the
importer; a primary address is replaced by one rule through the admin API and the importer; an
admin change is audited alike through the admin API, the console and the CLI's service call."""

# ruff: noqa: F811 - pytest fixtures imported from gate_support are redefined as arguments

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from gate_support import (
    PASSWORD,
    admin_create,
    asgi_face,  # noqa: F401 - fixture
    email_of,
    register,
    uniq,
)
from sqlalchemy import select

from sproutgate.domain.importing.service import SproutGateImporter
from sproutgate.storage.models import VerificationCode

ADMIN_USERS = "/api/admin/users"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def admin_view(face, account: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = await face.client.get(ADMIN_USERS, params={"q": account}, headers={"X-Admin-Token": face.admin_token})
    [user] = [u for u in r.json()["users"] if u["account"] == account]
    return user


async def signs_in(face, identifier: str) -> bool:  # type: ignore[no-untyped-def]
    r = await face.client.post("/api/auth/login", json={"account": identifier, "password": PASSWORD})
    return r.status_code == 200


class Legacy:
    """A SproutGate data directory with one user file per account, imported on demand."""

    def __init__(self, face, root: Path) -> None:  # type: ignore[no-untyped-def]
        self.face = face
        self.root = root
        (root / "users").mkdir(parents=True)

    async def write(self, account: str, **fields: Any) -> None:
        record = {"account": account, "password": await self.face.harness.services.hasher.hash(PASSWORD)}
        record.update(fields)
        (self.root / "users" / f"{account}.json").write_text(json.dumps(record))

    async def run(self, update: bool = False) -> None:
        s = self.face.harness.services
        report = await SproutGateImporter(s.settings, s.db, s.hasher, s.clock).run(self.root, update=update)
        assert report.counts()["malformed"] == 0, report.to_dict()


# -- one creation path ------------------------------------------------------------------------
@pytest.mark.both_engines
async def test_signup_admin_create_and_import_give_a_new_user_the_same_defaults(asgi_face, tmp_path):
    face = asgi_face
    signed_up = await register(face, (a := uniq("sgn")), email_of(a), username=a)
    created = await admin_create(face, account=(b := uniq("adm")))
    legacy = Legacy(face, tmp_path / "legacy")
    await legacy.write((c := uniq("imp")), email=email_of(c))
    await legacy.run()
    imported = await admin_view(face, c)

    def defaults(user: dict[str, Any]) -> dict[str, Any]:
        return {
            k: v
            for k, v in user.items()
            if k not in ("account", "username", "email", "createdAt", "updatedAt")
        }

    views = [await admin_view(face, a), await admin_view(face, b), imported]
    assert (
        defaults(views[0])
        == defaults(views[1])
        == defaults(views[2])
        == {
            "level": 0,
            "sproutCoins": 0,
            "secondaryEmails": [],
            "phone": None,
            "avatarUrl": None,
            "bio": None,
            "locale": "zh-CN",  # no Accept-Language at sign-up, none for the others: the default
            "disabled": False,
            "role": "user",
            "mfa": {"totp": False, "passkeys": 0},
        }
    )
    # No display name given: the account name, whichever way in.
    assert created["username"] == b and imported["username"] == c and signed_up["username"] == a
    for account in (a, b, c):
        assert await signs_in(face, email_of(account))


# -- one primary-address replacement rule -----------------------------------------------------
async def _reset_code(face, address: str) -> str:  # type: ignore[no-untyped-def]
    r = await face.client.post("/api/v1/auth/password-reset", json={"email": address})
    assert r.status_code == 204, r.text
    return await face.last_code(address, "reset_code")


async def _replace_through_admin_api(face, keep_old: bool, before=None) -> tuple[str, str, str]:  # type: ignore[no-untyped-def]
    account = uniq("adm")
    other = f"other-{account.lower()}@example.org"
    user = await admin_create(face, account=account, secondaryEmails=[other])
    if before is not None:
        await before(user["email"])
    new = f"new-{account.lower()}@example.org"
    body: dict[str, Any] = {"email": new}
    if keep_old:
        body["secondaryEmails"] = [other, user["email"]]
    r = await face.client.put(
        f"{ADMIN_USERS}/{account}", json=body, headers={"X-Admin-Token": face.admin_token}
    )
    assert r.status_code == 200, r.text
    return account, user["email"], other


async def _replace_through_import(face, root: Path, keep_old: bool, before=None) -> tuple[str, str, str]:  # type: ignore[no-untyped-def]
    legacy = Legacy(face, root)
    account = uniq("imp")
    old, other = email_of(account), f"other-{account.lower()}@example.org"
    await legacy.write(account, email=old, secondaryEmails=[other])
    await legacy.run()
    if before is not None:
        await before(old)
    new = f"new-{account.lower()}@example.org"
    await legacy.write(account, email=new, secondaryEmails=[other, old] if keep_old else [other])
    await legacy.run(update=True)
    return account, old, other


async def _outcome(face, account: str, old: str, other: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    user = await admin_view(face, account)
    return {
        "primary": user["email"].split("@")[0].removeprefix("new-") == account.lower(),
        "secondaries": sorted(
            "old" if e == old else "other" if e == other else e for e in user["secondaryEmails"]
        ),
        "old_signs_in": await signs_in(face, old),
    }


@pytest.mark.both_engines
@pytest.mark.parametrize(
    ("keep_old", "expected"),
    [
        (False, {"primary": True, "secondaries": ["other"], "old_signs_in": False}),
        (True, {"primary": True, "secondaries": ["old", "other"], "old_signs_in": True}),
    ],
)
async def test_replacing_a_primary_address_follows_one_rule_through_the_admin_api_and_the_import(
    asgi_face, tmp_path, keep_old, expected
):
    face = asgi_face
    through_api = await _outcome(face, *await _replace_through_admin_api(face, keep_old))
    through_import = await _outcome(face, *await _replace_through_import(face, tmp_path / "legacy", keep_old))
    assert through_api == through_import == expected


async def test_a_dropped_primary_address_is_free_for_a_new_account(asgi_face, tmp_path):
    face = asgi_face
    for _, old, _ in (
        await _replace_through_admin_api(face, keep_old=False),
        await _replace_through_import(face, tmp_path / "legacy", keep_old=False),
    ):
        await admin_create(face, email=old)


@pytest.mark.parametrize("keep_old", [False, True])
async def test_a_reset_code_mailed_to_a_dropped_primary_address_ends_with_it(asgi_face, tmp_path, keep_old):
    face = asgi_face
    codes: dict[str, str] = {}

    async def mail_a_reset_code(address: str) -> None:
        codes[address] = await _reset_code(face, address)

    replaced = [
        await _replace_through_admin_api(face, keep_old, before=mail_a_reset_code),
        await _replace_through_import(face, tmp_path / "legacy", keep_old, before=mail_a_reset_code),
    ]
    for _, old, _ in replaced:
        # Dropped: the code went with the address. Kept: it is still the user's address.
        async with face.harness.services.db.read() as s:
            left = (await s.execute(select(VerificationCode).where(VerificationCode.email == old))).all()
        assert len(left) == (1 if keep_old else 0)
        r = await face.client.post(
            "/api/v1/auth/password-reset/confirm",
            json={"email": old, "token": codes[old], "new_password": "Other#pass2026"},
        )
        assert r.status_code == (204 if keep_old else 401), r.text


# -- one audit record, whichever face ---------------------------------------------------------
async def _console(face):  # type: ignore[no-untyped-def]
    client = face.new_client()
    token = CSRF.search((await client.get("/admin")).text).group(1)
    r = await client.post("/admin/login", data={"csrf_token": token, "token": face.admin_token})
    assert r.status_code == 303, r.text
    return client


async def _console_edit(face, client, account: str, **changes: Any) -> None:  # type: ignore[no-untyped-def]
    page = await client.get(f"/admin/users/{account}")
    user = await admin_view(face, account)
    form = {
        "csrf_token": CSRF.search(page.text).group(1),
        "level": str(changes.get("level", user["level"])),
        "sprout_coins": str(changes.get("sproutCoins", user["sproutCoins"])),
        "role": changes.get("role", user["role"]),
    }
    if changes.get("disabled", user["disabled"]):
        form["disabled"] = "on"
    r = await client.post(f"/admin/users/{account}", data=form)
    assert r.status_code == 303, r.text


async def _last_update_details(face, account: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    events = await face.harness.services.admin.audit_log(50)
    return next(e.details for e in events if e.target == account and e.action == "user.update")


@pytest.mark.parametrize(
    "change",
    [
        {"level": 3},
        {"sproutCoins": 12, "role": "admin"},
        {"disabled": True},
    ],
)
async def test_the_same_admin_change_is_audited_alike_through_the_api_and_the_console(asgi_face, change):
    face = asgi_face
    console = await _console(face)
    via_api, via_console, via_api_full = [await admin_create(face) for _ in range(3)]
    r = await face.client.put(
        f"{ADMIN_USERS}/{via_api['account']}", json=change, headers={"X-Admin-Token": face.admin_token}
    )
    assert r.status_code == 200, r.text
    # Sending unchanged fields along changes nothing in the record either.
    full = {"level": 0, "sproutCoins": 0, "role": "user", "disabled": False, **change}
    r = await face.client.put(
        f"{ADMIN_USERS}/{via_api_full['account']}", json=full, headers={"X-Admin-Token": face.admin_token}
    )
    assert r.status_code == 200, r.text
    await _console_edit(face, console, via_console["account"], **change)

    records = [await _last_update_details(face, u["account"]) for u in (via_api, via_api_full, via_console)]
    assert records[0] == records[1] == records[2]
    assert records[0]["fields"] and "values" in records[0]


async def test_a_role_change_from_the_cli_is_audited_like_one_from_the_api(asgi_face):
    face = asgi_face
    via_api, via_cli = await admin_create(face), await admin_create(face)
    r = await face.client.put(
        f"{ADMIN_USERS}/{via_api['account']}",
        json={"role": "admin"},
        headers={"X-Admin-Token": face.admin_token},
    )
    assert r.status_code == 200, r.text
    await face.harness.services.admin.set_role(via_cli["email"], "admin", actor="cli")  # `user promote`
    assert await _last_update_details(face, via_api["account"]) == await _last_update_details(
        face, via_cli["account"]
    )
