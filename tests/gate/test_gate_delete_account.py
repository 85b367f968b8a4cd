"""POST /api/auth/delete-account and GET /api/v1/users/me/export, in process and against a real
``sproutgate serve`` (the hold's time travel and the audit trail: tests/v1/test_v1_leaving.py)."""

# ruff: noqa: F811 - pytest fixtures imported from gate_support are redefined as arguments

from __future__ import annotations

from gate_support import (
    HAN,
    PASSWORD,
    assert_problem,
    bearer,
    error_fields,
    face,  # noqa: F401 - fixture
    gate_login,
    gate_server,  # noqa: F401 - fixture
    register,
    uniq,
    v1_signup,
    valid,
)

DELETE = "/api/auth/delete-account"


async def test_deleting_the_account_on_the_gate_face(face):
    user = await register(face)
    account, email = user["account"], user["email"]
    token = (await gate_login(face, account))["token"]
    runtime = (
        await face.client.post("/api/v1/auth/sessions", json={"email": email, "password": PASSWORD})
    ).json()

    assert_problem(
        await face.client.post(DELETE, json={"currentPassword": PASSWORD}), 401, "not_authenticated"
    )
    r = await face.client.post(DELETE, json={}, headers=bearer(token))
    assert_problem(r, 422, "invalid_input")
    assert error_fields(r) == {"currentPassword": "field_required"}
    r = await face.client.post(DELETE, json={"currentPassword": "Wrong#pass2026"}, headers=bearer(token))
    body = assert_problem(r, 401, "wrong_password")
    assert HAN.search(body["detail"])
    assert await valid(face, token)  # a wrong password changes nothing

    r = await face.client.post(DELETE, json={"currentPassword": PASSWORD}, headers=bearer(token))
    assert r.status_code == 200 and r.json() == {"deleted": True}
    assert not await valid(face, token) and not await valid(face, runtime["access_token"])
    assert_problem(await face.client.get("/api/auth/me", headers=bearer(token)), 401, "not_authenticated")
    r = await face.client.post(
        "/api/v1/auth/sessions/refresh", json={"refresh_token": runtime["refresh_token"]}
    )
    assert_problem(r, 401, "invalid_refresh_token")
    r = await face.client.post("/api/auth/login", json={"account": account, "password": PASSWORD})
    assert_problem(r, 401, "invalid_credentials")
    assert "account_deleted" in [m["kind"] for m in await face.mailbox(email)]
    # Held: the name is refused (names are public). (The address: tests/v1/test_v1_leaving.py,
    # where the per-address code-mail limit can be raised.)
    r = await face.client.post(
        "/api/auth/register",
        json={"account": account, "email": f"{uniq()}@example.com", "password": PASSWORD, "username": "x"},
    )
    assert_problem(r, 409, "account_taken")


async def test_runtime_deletion_and_export(face):
    email = f"{uniq('rt')}@example.com"
    session = await v1_signup(face, email, username="Runtime Person")
    token = session["access_token"]
    r = await face.client.get("/api/v1/users/me/export", headers=bearer(token))
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["profile"]["email"] == email and data["profile"]["username"] == "Runtime Person"
    assert [a["email"] for a in data["addresses"]] == [email]
    assert [s["current"] for s in data["sessions"]] == [True]
    assert "refresh_token" not in r.text and session["refresh_token"] not in r.text

    r = await face.client.request(
        "DELETE", "/api/v1/users/me", json={"password": "Wrong#pass2026"}, headers=bearer(token)
    )
    assert_problem(r, 401, "wrong_password")
    r = await face.client.request(
        "DELETE", "/api/v1/users/me", json={"password": PASSWORD}, headers=bearer(token)
    )
    assert r.status_code == 204
    assert_problem(
        await face.client.get("/api/v1/users/me/export", headers=bearer(token)), 401, "not_authenticated"
    )
    r = await face.client.post(
        "/api/v1/auth/sessions/refresh", json={"refresh_token": session["refresh_token"]}
    )
    assert_problem(r, 401, "invalid_refresh_token")
