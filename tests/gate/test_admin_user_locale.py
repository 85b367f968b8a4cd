"""The mail language on the admin's user objects (issue 14's stored ``locale``): shown by
GET /api/admin/users, set by PUT /api/admin/users/{account} {"locale": "en" | "zh-CN"} through
AdminService (audited like every admin change), and on the console's user page. An addition to
sproutgate-api.md's user object, whose documented fields stay as they are."""

# ruff: noqa: F811 - pytest fixtures imported from gate_support are redefined as arguments

from __future__ import annotations

import re

import pytest
from gate_support import (
    admin_create,
    asgi_face,  # noqa: F401 - fixture
    assert_problem,
    error_fields,
)

from support.harness import AppHarness

pytestmark = pytest.mark.both_engines

USERS = "/api/admin/users"


async def _listed(face, account: str) -> dict:  # type: ignore[no-untyped-def]
    r = await face.client.get(USERS, params={"q": account}, headers={"X-Admin-Token": face.admin_token})
    assert r.status_code == 200, r.text
    (user,) = [u for u in r.json()["users"] if u["account"] == account]
    return user


async def test_an_admin_sees_and_sets_the_mail_language_and_it_is_audited(asgi_face):
    face = asgi_face
    headers = {"X-Admin-Token": face.admin_token}
    user = await admin_create(face)
    account = user["account"]
    assert user["locale"] == "zh-CN"  # the default of an account no request chose a language for
    assert (await _listed(face, account))["locale"] == "zh-CN"

    r = await face.client.put(f"{USERS}/{account}", json={"locale": "en"}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["user"]["locale"] == "en"
    assert (await _listed(face, account))["locale"] == "en"
    # Any case names the same language, stored as the language's own spelling.
    r = await face.client.put(f"{USERS}/{account}", json={"locale": "ZH-cn"}, headers=headers)
    assert r.status_code == 200 and r.json()["user"]["locale"] == "zh-CN", r.text
    # The same value again is no change: the audit record names no field.
    r = await face.client.put(f"{USERS}/{account}", json={"locale": "zh-CN"}, headers=headers)
    assert r.status_code == 200, r.text

    events = [e for e in await face.harness.services.admin.audit_log(20) if e.target == account]
    updates = [e.details for e in events if e.action == "user.update"]
    assert updates == [
        {"fields": []},
        {"fields": ["locale"], "values": {"locale": "zh-CN"}},
        {"fields": ["locale"], "values": {"locale": "en"}},
    ]
    # Creating a user with a language sets it too.
    other = await admin_create(face, locale="en")
    assert other["locale"] == "en"


async def test_a_language_sproutgate_does_not_speak_is_a_422_problem(asgi_face):
    face = asgi_face
    user = await admin_create(face)
    for bad in ("fr", "", "zh", None, 5, ["en"], "e" * 17):
        r = await face.client.put(
            f"{USERS}/{user['account']}",
            json={"locale": bad},
            headers={"X-Admin-Token": face.admin_token, "Accept-Language": "en"},
        )
        assert_problem(r, 422)
        assert "locale" in error_fields(r), (bad, r.text)
    r = await face.client.put(
        f"{USERS}/{user['account']}",
        json={"locale": "fr"},
        headers={"X-Admin-Token": face.admin_token, "Accept-Language": "zh-CN"},
    )
    assert_problem(r, 422)
    assert re.search(r"[\u4e00-\u9fff]", r.json()["detail"]), r.text
    assert (await _listed(face, user["account"]))["locale"] == "zh-CN"  # nothing changed


async def test_the_console_user_page_shows_and_saves_the_mail_language(asgi_face):
    face = asgi_face
    h: AppHarness = face.harness
    user = await admin_create(face, locale="en")
    account = user["account"]
    console = h.new_client(**{"Accept-Language": "en"})
    r = await console.post(
        "/admin/login", data={"csrf_token": await _csrf(console, "/admin"), "token": face.admin_token}
    )
    assert r.status_code in (200, 303), r.text
    page = await console.get(f"/admin/users/{account}")
    assert page.status_code == 200, page.text
    assert re.search(r'<option value="en" lang="en" selected>', page.text), page.text
    form = {
        "csrf_token": await _csrf(console, f"/admin/users/{account}"),
        "level": "0",
        "sprout_coins": "0",
        "role": "user",
        "locale": "zh-CN",
    }
    r = await console.post(f"/admin/users/{account}", data=form)
    assert r.status_code == 303, r.text
    assert (await _listed(face, account))["locale"] == "zh-CN"
    # A language the form never offers: the page says so, nothing is saved.
    r = await console.post(
        f"/admin/users/{account}",
        data={**form, "csrf_token": await _csrf(console, f"/admin/users/{account}"), "locale": "fr"},
    )
    assert r.status_code == 422, r.text
    assert (await _listed(face, account))["locale"] == "zh-CN"
    await console.aclose()


async def _csrf(client, path: str) -> str:  # type: ignore[no-untyped-def]
    r = await client.get(path)
    found = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert found, r.text
    return found.group(1)
