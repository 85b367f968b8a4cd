"""The admin console's apps page (issue 12) over HTTP, in-process: who may see it, the secret
shown once and never cached, forms refused without their CSRF token, unknown apps. The browser
walk-through is test_console_clients_browser.py."""

from __future__ import annotations

import re
from typing import Any

import httpx

from sproutgate.domain.clients.rules import ClientSpec

EN = {"Accept-Language": "en"}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


async def open_console(h: Any) -> httpx.AsyncClient:
    client = h.new_client(**EN)
    page = await client.get("/admin")
    r = await client.post(
        "/admin/login", data={"csrf_token": csrf_of(page.text), "token": h.services.admin_guard.token}
    )
    assert r.status_code == 303, r.text
    return client


async def test_only_administrators_see_or_change_apps(harness):
    h = harness
    created = await h.services.clients.create(
        ClientSpec(name="Family Web", redirect_uris=("https://web.example.com/cb",)), "test"
    )
    client_id = created.client.client_id
    stranger = h.new_client(**EN)
    for path in ("/admin/clients", f"/admin/clients/{client_id}", f"/admin/clients/{client_id}/delete"):
        r = await stranger.get(path)
        assert 'name="token"' in r.text and "Family Web" not in r.text, path
    page = await stranger.get("/admin")
    for path in (f"/admin/clients/{client_id}/delete", f"/admin/clients/{client_id}/secret"):
        r = await stranger.post(path, data={"csrf_token": csrf_of(page.text)})
        assert 'name="token"' in r.text, path
    assert (await h.services.clients.get(client_id)).name == "Family Web"


async def test_secret_shown_once_uncached_and_forms_need_their_csrf_token(harness):
    h = harness
    admin = await open_console(h)
    page = await admin.get("/admin/clients")
    assert page.status_code == 200 and "No apps are registered yet." in page.text
    form = {
        "csrf_token": csrf_of(page.text),
        "name": "Backend",
        "redirect_uris": "https://api.example.com/cb\n\n  https://api.example.com/cb2  \n",
        "scopes": ["openid", "sproutgate"],
        "grant_types": ["authorization_code", "client_credentials"],
    }
    r = await admin.post("/admin/clients", data={k: v for k, v in form.items() if k != "csrf_token"})
    assert r.status_code == 403 and await h.services.clients.list() == []
    r = await admin.post("/admin/clients", data=form)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    secret = re.search(r'data-testid="client-secret">([^<]+)<', r.text).group(1)  # type: ignore[union-attr]
    client_id = re.search(r'data-testid="client-id">([^<]+)<', r.text).group(1)  # type: ignore[union-attr]
    client = await h.services.clients.authenticate(client_id, secret)
    assert client.redirect_uris == ("https://api.example.com/cb", "https://api.example.com/cb2")
    assert client.scopes == ("openid", "sproutgate")
    assert client.grant_types == ("authorization_code", "client_credentials")
    # The secret is not on any other page.
    for path in ("/admin/clients", f"/admin/clients/{client_id}", "/admin/audit"):
        assert secret not in (await admin.get(path)).text
    # Unknown apps are the pages' 404.
    assert (await admin.get("/admin/clients/no-such-app")).status_code == 404
    r = await admin.post("/admin/clients/no-such-app", data={"csrf_token": form["csrf_token"], "name": "x"})
    assert r.status_code == 404


async def test_refused_values_are_shown_next_to_their_fields_in_chinese(harness):
    h = harness
    admin = await open_console(h)
    admin.headers["Accept-Language"] = "zh-CN"
    page = await admin.get("/admin/clients")
    r = await admin.post(
        "/admin/clients",
        data={
            "csrf_token": csrf_of(page.text),
            "name": "公开应用",
            "public": "on",
            "redirect_uris": "http://app.example.com/cb",
            "grant_types": ["client_credentials"],
        },
    )
    assert r.status_code == 422
    assert 'id="f-redirect_uris-error"' in r.text and "https" in r.text
    assert 'id="f-grant_types-error"' in r.text and "仅限机密客户端" in r.text
    assert 'value="公开应用"' in r.text  # what was typed stays
    assert await h.services.clients.list() == []
