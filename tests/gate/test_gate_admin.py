"""/api/admin/users: the admin token in every carrier, admin-role users, throttling, the user
operations and their audit trail."""

# ruff: noqa: F811 - pytest fixtures imported from gate_support are redefined as arguments

from __future__ import annotations

import pytest
from gate_support import (
    PASSWORD,
    USER_FIELDS,
    admin_create,
    asgi_face,  # noqa: F401 - fixture
    assert_problem,
    bearer,
    email_of,
    error_fields,
    face,  # noqa: F401 - fixture
    gate_login,
    gate_server,  # noqa: F401 - fixture
    register,
    uniq,
    valid,
)

USERS = "/api/admin/users"
# Administrators also see whether a user has second factors on (issue 13): {"totp": bool, "passkeys": int}.
ADMIN_FIELDS = USER_FIELDS | {"disabled", "role", "mfa"}


def _admin_headers_ok(r) -> None:  # type: ignore[no-untyped-def]
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"


# -- access -----------------------------------------------------------------------------------
async def test_admin_token_works_in_query_header_and_bearer(face):
    token = face.admin_token
    for kwargs in (
        {"params": {"token": token}},
        {"headers": {"X-Admin-Token": token}},
        {"headers": {"Authorization": f"Bearer {token}"}},
    ):
        r = await face.client.get(USERS, **kwargs)
        assert r.status_code == 200, (kwargs.keys(), r.text)
        assert set(r.json()) == {"total", "users"}
        _admin_headers_ok(r)


async def test_missing_or_wrong_admin_tokens_are_401(face):
    account = uniq()
    await register(face, account)
    user_token = (await gate_login(face, account))["token"]
    wrong = face.admin_token[:-2] + ("AA" if not face.admin_token.endswith("AA") else "BB")
    for kwargs in (
        {},
        {"params": {"token": ""}},
        {"params": {"token": wrong}},
        {"headers": {"X-Admin-Token": wrong}},
        {"headers": {"Authorization": f"Bearer {wrong}"}},
        {"headers": {"Authorization": f"Basic {face.admin_token}"}},
        {"headers": bearer(user_token)},  # a valid token of a user without the admin role
    ):
        r = await face.client.get(USERS, **kwargs)
        assert_problem(r, 401, "admin_token_required")
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["www-authenticate"] == "Bearer"
    for method, path in (("POST", USERS), ("PUT", f"{USERS}/{account}"), ("DELETE", f"{USERS}/{account}")):
        assert_problem(await face.client.request(method, path, json={}), 401, "admin_token_required")


async def test_an_admin_role_users_access_token_is_accepted_and_audited_as_them(face):
    admin = await admin_create(face, role="admin")
    assert admin["role"] == "admin"
    token = (await gate_login(face, admin["account"]))["token"]
    target = await admin_create(face)
    r = await face.client.put(f"{USERS}/{target['account']}", json={"level": 2}, headers=bearer(token))
    assert r.status_code == 200, r.text
    r = await face.client.post("/api/v1/auth/sessions", json={"email": admin["email"], "password": PASSWORD})
    runtime = r.json()["access_token"]
    assert (await face.client.get(USERS, headers=bearer(runtime))).status_code == 200  # runtime token too
    if face.harness is not None:
        events = await face.harness.services.admin.audit_log(10)
        assert any(e.actor == f"user:{admin['account']}" and e.target == target["account"] for e in events)


async def test_repeated_admin_token_failures_are_throttled_per_address(face):
    attacker = face.new_client()
    for _ in range(20):
        assert (await attacker.get(USERS, headers={"X-Admin-Token": "guess"})).status_code == 401
    r = await attacker.get(USERS, headers={"X-Admin-Token": face.admin_token})
    assert_problem(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) > 0
    assert (await face.client.get(USERS, headers={"X-Admin-Token": face.admin_token})).status_code == 200


# -- list -------------------------------------------------------------------------------------
async def test_list_filters_by_account_username_or_any_email_and_pages_with_a_full_total(face):
    tag = uniq("tag")
    a = await admin_create(face, account=f"{tag}a")
    b = await admin_create(face, username=f"名{tag.upper()}")
    c = await admin_create(face, secondaryEmails=[f"{tag}@example.org"])
    d = await admin_create(face, email=f"x{tag}@example.net")
    await admin_create(face)  # does not match
    headers = {"X-Admin-Token": face.admin_token}
    r = await face.client.get(USERS, params={"q": tag}, headers=headers)
    body = r.json()
    assert body["total"] == 4
    assert [u["account"] for u in body["users"]] == [a["account"], b["account"], c["account"], d["account"]]
    assert all(set(u) == ADMIN_FIELDS for u in body["users"])
    r = await face.client.get(USERS, params={"q": tag, "page": 2, "pageSize": 3}, headers=headers)
    assert r.json()["total"] == 4 and [u["account"] for u in r.json()["users"]] == [d["account"]]
    r = await face.client.get(USERS, params={"q": tag, "page": 3, "pageSize": 3}, headers=headers)
    assert r.json() == {"total": 4, "users": []}


async def test_list_defaults_to_50_per_page_and_treats_wildcards_literally(face):
    headers = {"X-Admin-Token": face.admin_token}
    r = await face.client.get(USERS, headers=headers)
    assert len(r.json()["users"]) == min(50, r.json()["total"])
    r = await face.client.get(USERS, params={"q": "%"}, headers=headers)
    assert r.json()["total"] == 0
    r = await face.client.get(USERS, params={"q": "_"}, headers=headers)
    assert all("_" in (u["account"] + u["username"] + u["email"]) for u in r.json()["users"])


@pytest.mark.engine_independent
@pytest.mark.parametrize(("params", "field"), [({"pageSize": 501}, "pageSize"), ({"page": 0}, "page")])
async def test_list_rejects_bad_paging(face, params, field):
    r = await face.client.get(USERS, params=params, headers={"X-Admin-Token": face.admin_token})
    assert_problem(r, 422)
    assert set(error_fields(r)) == {field}


async def test_list_accepts_the_maximum_page_size(face):
    r = await face.client.get(USERS, params={"pageSize": 500}, headers={"X-Admin-Token": face.admin_token})
    assert r.status_code == 200


# -- create -----------------------------------------------------------------------------------
async def test_create_sets_every_field_and_hashes_the_password(face):
    account = uniq("Full")
    fields = {
        "account": account,
        "password": PASSWORD,
        "username": "示例用户",
        "email": email_of(account),
        "level": 3,
        "sproutCoins": 10,
        "secondaryEmails": [f"second-{account.lower()}@example.org"],
        "phone": "13800000000",
        "avatarUrl": "https://example.com/avatar.png",
        "bio": "### 简介",
    }
    r = await face.client.post(USERS, json=fields, headers={"X-Admin-Token": face.admin_token})
    assert r.status_code == 201, r.text
    _admin_headers_ok(r)
    user = r.json()["user"]
    assert set(r.json()) == {"user"} and set(user) == ADMIN_FIELDS
    assert {k: user[k] for k in fields if k != "password"} == {
        k: v for k, v in fields.items() if k != "password"
    }
    assert user["disabled"] is False and user["role"] == "user"
    assert PASSWORD not in r.text
    await gate_login(face, account)
    await gate_login(face, fields["secondaryEmails"][0])


async def test_create_conflicts_are_409(face):
    existing = await admin_create(face)
    headers = {"X-Admin-Token": face.admin_token}
    r = await face.client.post(
        USERS,
        json={"account": existing["account"].upper(), "email": email_of(uniq()), "password": PASSWORD},
        headers=headers,
    )
    assert_problem(r, 409, "account_taken")
    r = await face.client.post(
        USERS, json={"account": uniq(), "email": existing["email"], "password": PASSWORD}, headers=headers
    )
    assert_problem(r, 409, "email_taken")


@pytest.mark.engine_independent
@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({}, {"account": "field_required", "email": "field_required", "password": "field_required"}),
        ({"sproutCoins": -1}, {"sproutCoins": "invalid_value"}),
        ({"level": "high"}, {"level": "invalid_type"}),
        ({"role": "root"}, {"role": "invalid_value"}),
        ({"avatarUrl": "data:image/png;base64,xx"}, {"avatarUrl": "invalid_url"}),
        ({"secondaryEmails": ["nope"]}, {"secondaryEmails": "invalid_email"}),
        ({"account": "x"}, {"account": "invalid_account"}),
    ],
)
async def test_create_validation_errors_use_the_wire_names(face, fields, errors):
    body = {"account": uniq(), "email": email_of(uniq()), "password": PASSWORD, **fields} if fields else {}
    r = await face.client.post(USERS, json=body, headers={"X-Admin-Token": face.admin_token})
    assert_problem(r, 422)
    assert error_fields(r) == errors


# -- update -----------------------------------------------------------------------------------
async def test_update_changes_any_field_and_a_new_password_ends_the_sessions(face):
    user = await admin_create(face)
    token = (await gate_login(face, user["account"]))["token"]
    extra = f"extra-{user['account'].lower()}@example.org"
    changes = {
        "username": "新昵称",
        "level": 1,
        "sproutCoins": 99,
        "secondaryEmails": [extra],
        "password": "Brand#New2026pw",
        "role": "admin",
    }
    r = await face.client.put(
        f"{USERS}/{user['account'].upper()}", json=changes, headers={"X-Admin-Token": face.admin_token}
    )
    assert r.status_code == 200, r.text
    _admin_headers_ok(r)
    updated = r.json()["user"]
    assert set(r.json()) == {"user"}
    assert {k: updated[k] for k in changes if k != "password"} == {
        k: v for k, v in changes.items() if k != "password"
    }
    assert updated["account"] == user["account"] and updated["email"] == user["email"]
    assert await valid(face, token) is False
    assert_problem(
        await face.client.post("/api/auth/login", json={"account": user["account"], "password": PASSWORD}),
        401,
    )
    await gate_login(face, extra, "Brand#New2026pw")


async def test_update_errors(face):
    user = await admin_create(face)
    other = await admin_create(face)
    headers = {"X-Admin-Token": face.admin_token}
    assert_problem(
        await face.client.put(f"{USERS}/{uniq()}", json={"level": 1}, headers=headers), 404, "user_not_found"
    )
    r = await face.client.put(f"{USERS}/{user['account']}", json={"account": uniq()}, headers=headers)
    assert_problem(r, 422)
    assert error_fields(r) == {"account": "account_immutable"}
    r = await face.client.put(
        f"{USERS}/{user['account']}", json={"account": user["account"]}, headers=headers
    )
    assert r.status_code == 200  # sending the same name back is fine
    r = await face.client.put(f"{USERS}/{user['account']}", json={"email": other["email"]}, headers=headers)
    assert_problem(r, 409, "email_taken")
    r = await face.client.put(
        f"{USERS}/{user['account']}", json={"secondaryEmails": [other["email"]]}, headers=headers
    )
    assert_problem(r, 409, "email_taken")
    r = await face.client.put(f"{USERS}/{user['account']}", json={"sproutCoins": -5}, headers=headers)
    assert_problem(r, 422)


# -- delete -----------------------------------------------------------------------------------
async def test_delete_removes_the_user_and_an_unknown_account_is_404(face):
    user = await admin_create(face)
    headers = {"X-Admin-Token": face.admin_token}
    r = await face.client.delete(f"{USERS}/{user['account']}", headers=headers)
    assert r.status_code == 200 and r.json() == {"deleted": True}
    _admin_headers_ok(r)
    assert_problem(
        await face.client.delete(f"{USERS}/{user['account']}", headers=headers), 404, "user_not_found"
    )
    r = await face.client.post("/api/auth/login", json={"account": user["account"], "password": PASSWORD})
    assert_problem(r, 401)
    r = await face.client.get(USERS, params={"q": user["account"]}, headers=headers)
    assert r.json()["total"] == 0


# -- audit ------------------------------------------------------------------------------------
async def test_every_admin_change_is_audited_without_secrets(asgi_face):
    face = asgi_face
    headers = {"X-Admin-Token": face.admin_token, "X-Forwarded-For": "203.0.113.9"}
    user = await admin_create(face)
    await face.client.put(
        f"{USERS}/{user['account']}", json={"sproutCoins": 7, "password": "Other#pass2026"}, headers=headers
    )
    await face.client.delete(f"{USERS}/{user['account']}", headers=headers)
    events = await face.harness.services.admin.audit_log(10)
    mine = [(e.actor, e.action, e.target) for e in events if e.target == user["account"]]
    assert mine == [
        ("admin-token", "user.delete", user["account"]),
        ("admin-token", "user.update", user["account"]),
        ("admin-token", "user.create", user["account"]),
    ]
    update = next(e for e in events if e.action == "user.update")
    assert update.ip == "203.0.113.9"
    assert update.details == {"fields": ["password", "sprout_coins"], "values": {"sprout_coins": 7}}
    assert "Other#pass2026" not in repr([e.details for e in events])
