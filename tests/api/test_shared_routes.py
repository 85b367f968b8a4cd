"""Apps built in one process share what FastAPI builds for a router's routes
(api/shared_routes.py; docs/decisions/shared-route-builds.md), and each still answers from its
own state: its own settings, database and keys."""

from __future__ import annotations


async def test_two_apps_share_the_built_routes_and_answer_each_from_its_own_state(
    make_harness, make_settings, tmp_path
):
    one = await make_harness(make_settings(data_dir=tmp_path / "one", public_url="http://one.example"))
    two = await make_harness(make_settings(data_dir=tmp_path / "two", public_url="http://two.example"))
    entries = [{id(r) for r in h.app.router.routes} for h in (one, two)]
    assert entries[0] & entries[1], "the second app built its own routes again"

    # Each app's issuer, keys and users are its own.
    discovery = [(await h.client.get("/.well-known/openid-configuration")).json() for h in (one, two)]
    assert [d["issuer"] for d in discovery] == ["http://one.example", "http://two.example"]
    keys = [
        (await h.client.get(d["jwks_uri"].removeprefix(d["issuer"]))).json()["keys"][0]["kid"]
        for h, d in zip((one, two), discovery, strict=True)
    ]
    assert keys[0] != keys[1]
    body = {"email": "shared@example.com", "password": "Sprout#2026pass", "username": "shared"}
    assert (await one.client.post("/api/v1/auth/verifications", json=body)).status_code == 202
    assert await one.mailbox("shared@example.com")
    assert not await two.mailbox("shared@example.com")
    # A page too: the second app renders with its own state (the pages' router is shared).
    assert (await two.client.get("/login")).status_code == 200
