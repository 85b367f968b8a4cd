"""/api/admin/clients (issue 12): the OAuth client registry over the admin API, with the admin
credentials of /api/admin/users, problem+json errors in the caller's language and an audit
record of every change."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from sproutgate.domain.clients.errors import InvalidClient

pytestmark = pytest.mark.both_engines

CLIENTS = "/api/admin/clients"
PASSWORD = "Sprout#Garden2026"
HAN = re.compile(r"[\u4e00-\u9fff]")
CLIENT_FIELDS = {
    "clientId",
    "name",
    "public",
    "firstParty",
    "tokenEndpointAuthMethod",
    "redirectUris",
    "postLogoutRedirectUris",
    "backchannelLogoutUri",
    "scopes",
    "grantTypes",
    "createdAt",
    "updatedAt",
}


def admin(h: Any) -> dict[str, str]:
    return {"X-Admin-Token": h.services.admin_guard.token}


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].split(";")[0] == "application/problem+json"
    body = r.json()
    assert body["code"] == code and body["status"] == status and body["instance"] == r.request.url.path
    return body


def fields(r: httpx.Response) -> dict[str, str]:
    return {e["field"]: e["code"] for e in r.json().get("errors") or []}


async def test_admin_registers_shows_changes_rotates_and_deletes_a_client(harness):
    h = harness
    r = await h.client.post(
        CLIENTS,
        json={
            "name": "Family Web",
            "redirectUris": ["https://web.example.com/cb", "http://127.0.0.1/cb"],
            "postLogoutRedirectUris": ["https://web.example.com/"],
            "backchannelLogoutUri": "https://web.example.com/bc",
            "firstParty": True,
            "scopes": ["openid", "email", "offline_access"],
        },
        headers=admin(h),
    )
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store" and r.headers["referrer-policy"] == "no-referrer"
    created = r.json()
    client, secret = created["client"], created["clientSecret"]
    assert set(client) == CLIENT_FIELDS
    assert client["firstParty"] is True and client["public"] is False
    assert client["tokenEndpointAuthMethod"] == "client_secret_basic"
    assert client["grantTypes"] == ["authorization_code", "refresh_token"]
    assert client["scopes"] == ["openid", "email", "offline_access"]
    client_id = client["clientId"]
    assert (await h.services.clients.authenticate(client_id, secret)).client_id == client_id

    r = await h.client.get(CLIENTS, headers=admin(h))
    assert r.status_code == 200 and r.json() == {"clients": [client]}
    assert secret not in r.text
    r = await h.client.get(f"{CLIENTS}/{client_id}", headers=admin(h))
    assert r.status_code == 200 and r.json() == {"client": client}

    # PUT changes only what it names; null leaves a list as it is, and removes the back-channel URI.
    h.clock.advance(60)
    r = await h.client.put(
        f"{CLIENTS}/{client_id}",
        json={"name": "Family Web 2", "redirectUris": ["https://web.example.com/cb2"], "scopes": None,
              "backchannelLogoutUri": None},
        headers=admin(h),
    )  # fmt: skip
    assert r.status_code == 200, r.text
    changed = r.json()["client"]
    assert changed["name"] == "Family Web 2" and changed["redirectUris"] == ["https://web.example.com/cb2"]
    assert changed["scopes"] == client["scopes"] and changed["backchannelLogoutUri"] is None
    assert changed["postLogoutRedirectUris"] == client["postLogoutRedirectUris"]
    assert changed["updatedAt"] > client["updatedAt"] and changed["createdAt"] == client["createdAt"]
    # The secret did not change with the registration.
    await h.services.clients.authenticate(client_id, secret)

    r = await h.client.post(f"{CLIENTS}/{client_id}/secret", headers=admin(h))
    assert r.status_code == 200, r.text
    new_secret = r.json()["clientSecret"]
    assert new_secret and new_secret != secret
    with pytest.raises(InvalidClient):
        await h.services.clients.authenticate(client_id, secret)
    await h.services.clients.authenticate(client_id, new_secret)

    r = await h.client.delete(f"{CLIENTS}/{client_id}", headers=admin(h))
    assert r.status_code == 200 and r.json() == {"deleted": True}
    problem(await h.client.get(f"{CLIENTS}/{client_id}", headers=admin(h)), 404, "client_not_found")
    problem(await h.client.delete(f"{CLIENTS}/{client_id}", headers=admin(h)), 404, "client_not_found")
    with pytest.raises(InvalidClient):
        await h.services.clients.authenticate(client_id, new_secret)

    events = [e for e in await h.services.admin.audit_log(20) if e.target == client_id]
    assert [e.action for e in reversed(events)] == [
        "client.create",
        "client.update",
        "client.rotate_secret",
        "client.delete",
    ]
    assert {e.actor for e in events} == {"admin-token"} and all(e.ip for e in events)
    update = next(e for e in events if e.action == "client.update")
    assert update.details == {
        "fields": ["name", "redirect_uris", "backchannel_logout_uri"],
        "values": {
            "name": "Family Web 2",
            "redirect_uris": ["https://web.example.com/cb2"],
            "backchannel_logout_uri": None,
        },
    }
    trail = repr([e.details for e in events])
    assert secret not in trail and new_secret not in trail


async def test_an_admin_role_users_token_works_and_is_audited_as_them(harness):
    h = harness
    for account, role in (("appadmin", "admin"), ("appuser", "user")):
        r = await h.client.post(
            "/api/admin/users",
            json={"account": account, "email": f"{account}@example.com", "password": PASSWORD, "role": role},
            headers=admin(h),
        )
        assert r.status_code == 201, r.text
    tokens = {}
    for account in ("appadmin", "appuser"):
        r = await h.client.post("/api/auth/login", json={"account": account, "password": PASSWORD})
        tokens[account] = r.json()["token"]
    body = {"name": "By a person", "redirectUris": ["https://a.example/cb"]}
    r = await h.client.post(CLIENTS, json=body, headers={"Authorization": f"Bearer {tokens['appadmin']}"})
    assert r.status_code == 201, r.text
    client_id = r.json()["client"]["clientId"]
    [event] = [e for e in await h.services.admin.audit_log(10) if e.target == client_id]
    assert event.actor == "user:appadmin" and event.action == "client.create"
    r = await h.client.get(CLIENTS, headers={"Authorization": f"Bearer {tokens['appuser']}"})
    assert r.status_code in (401, 403) and r.headers["content-type"].startswith("application/problem+json")


async def test_public_clients_have_no_secret(harness):
    h = harness
    r = await h.client.post(
        CLIENTS,
        json={"name": "SPA", "public": True, "redirectUris": ["https://spa.example.com/cb"]},
        headers=admin(h),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["clientSecret"] is None and body["client"]["tokenEndpointAuthMethod"] == "none"
    client_id = body["client"]["clientId"]
    problem(
        await h.client.post(f"{CLIENTS}/{client_id}/secret", headers=admin(h)),
        409,
        "public_client_has_no_secret",
    )
    # The client type is fixed at registration.
    r = await h.client.put(f"{CLIENTS}/{client_id}", json={"public": False}, headers=admin(h))
    problem(r, 422, "invalid_input")
    assert fields(r) == {"public": "client_type_fixed"}
    # Sending the type it has is no change.
    r = await h.client.put(f"{CLIENTS}/{client_id}", json={"public": True}, headers=admin(h))
    assert r.status_code == 200 and r.json()["client"] == body["client"]


@pytest.mark.engine_independent
async def test_the_admin_credentials_are_required(harness):
    h = harness
    r = await h.client.post(
        CLIENTS, json={"name": "x", "redirectUris": ["https://a.example/cb"]}, headers=admin(h)
    )
    client_id = r.json()["client"]["clientId"]
    calls = [
        ("GET", CLIENTS, None),
        ("POST", CLIENTS, {"name": "Sneaky", "redirectUris": ["https://evil.example/cb"]}),
        ("GET", f"{CLIENTS}/{client_id}", None),
        ("PUT", f"{CLIENTS}/{client_id}", {"redirectUris": ["https://evil.example/cb"]}),
        ("POST", f"{CLIENTS}/{client_id}/secret", None),
        ("DELETE", f"{CLIENTS}/{client_id}", None),
    ]
    for headers in ({}, {"X-Admin-Token": "wrong-token"}, {"Authorization": "Bearer nonsense"}):
        for method, url, body in calls:
            r = await h.new_client().request(method, url, json=body, headers=headers)
            assert r.status_code == 401, (method, url, headers, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
    # Nothing changed.
    assert [c.name for c in await h.services.clients.list()] == ["x"]
    assert (await h.services.clients.get(client_id)).redirect_uris == ("https://a.example/cb",)


@pytest.mark.engine_independent
async def test_bad_registrations_are_422_problems_in_the_callers_language(harness):
    h = harness
    cases: list[tuple[dict[str, Any], dict[str, str]]] = [
        ({"redirectUris": ["https://a.example/cb"]}, {"name": "field_required"}),
        (
            {"name": "A", "redirectUris": ["https://a.example/cb#x"]},
            {"redirectUris": "redirect_uri_fragment"},
        ),
        ({"name": "A", "redirectUris": ["http://a.example/cb"]}, {"redirectUris": "insecure_redirect_uri"}),
        (
            {"name": "A", "redirectUris": ["com.example.app:/cb"]},
            {"redirectUris": "custom_scheme_needs_public_client"},
        ),
        ({"name": "A"}, {"redirectUris": "field_required"}),
        (
            {"name": "A", "public": True, "grantTypes": ["client_credentials"]},
            {"grantTypes": "client_credentials_needs_confidential_client"},
        ),
        (
            {"name": "A", "redirectUris": ["https://a.example/cb"], "grantTypes": ["implicit"]},
            {"grantTypes": "unknown_grant_type"},
        ),
        (
            {"name": "A", "redirectUris": ["https://a.example/cb"], "scopes": ["admin"]},
            {"scopes": "unknown_scope"},
        ),
        (
            {
                "name": "A",
                "redirectUris": ["https://a.example/cb"],
                "backchannelLogoutUri": "ftp://a.example/",
            },
            {"backchannelLogoutUri": "custom_scheme_needs_public_client"},
        ),
        ({"name": "A", "redirectUris": "https://a.example/cb"}, {"redirectUris": "invalid_type"}),
        (
            {"name": "A", "redirectUris": ["https://a.example/cb"], "public": "yes"},
            {"public": "invalid_type"},
        ),
        ({"name": "A\x00", "redirectUris": ["https://a.example/cb"]}, {"name": "contains_nul"}),
        ({"name": "A" * 101, "redirectUris": ["https://a.example/cb"]}, {"name": "client_name_too_long"}),
    ]
    for body, expected in cases:
        r = await h.client.post(CLIENTS, json=body, headers=admin(h))
        problem(r, 422, "invalid_input")
        got = fields(r)
        for name, code in expected.items():
            assert got.get(name) == code, (body, r.json())
    r = await h.client.post(
        CLIENTS,
        json={"name": "A", "redirectUris": ["https://a.example/cb#x"]},
        headers={**admin(h), "Accept-Language": "zh-CN"},
    )
    body = problem(r, 422, "invalid_input")
    assert HAN.search(body["detail"]) and "redirectUris" in body["detail"]
    assert HAN.search(body["errors"][0]["message"])
    r = await h.client.post(
        CLIENTS,
        json={"name": "A", "redirectUris": ["https://a.example/cb#x"]},
        headers={**admin(h), "Accept-Language": "en"},
    )
    assert "must not contain a fragment" in r.json()["detail"]
    assert await h.services.clients.list() == []
    # Unknown or odd client ids are 404s, never 500s.
    for odd in ("nope", "a" * 300, "%00", "a%20b", "a.b"):
        problem(await h.client.get(f"{CLIENTS}/{odd}", headers=admin(h)), 404, "client_not_found")
        r = await h.client.put(f"{CLIENTS}/{odd}", json={"name": "B"}, headers=admin(h))
        problem(r, 404, "client_not_found")
