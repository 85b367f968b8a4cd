"""ClientService on both engines (issue 12): what is stored, client authentication's one answer,
the delete hooks other aggregates hang their grants on, and changes that change nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sproutgate.domain.clients.errors import ClientNotFound, InvalidClient
from sproutgate.domain.clients.rules import ClientChanges, ClientSpec
from sproutgate.storage.models import OAuthClient

pytestmark = pytest.mark.both_engines

WEB = ClientSpec(name="Family Web", redirect_uris=("https://web.example.com/cb",))


async def test_only_a_keyed_hash_of_the_secret_is_stored(harness):
    h = harness
    created = await h.services.clients.create(WEB, "test")
    secret = created.client_secret
    assert secret is not None
    async with h.services.db.read() as s:
        row = (await s.execute(select(OAuthClient))).scalar_one()
    stored = {c.name: getattr(row, c.key) for c in OAuthClient.__table__.columns}  # type: ignore[attr-defined]
    assert secret not in repr(stored)
    assert row.secret_hash and len(row.secret_hash) == 64
    assert row.redirect_uris == ["https://web.example.com/cb"] and row.scopes == [
        "openid",
        "profile",
        "email",
    ]


async def test_client_authentication_has_one_answer_for_every_failure(harness):
    clients = harness.services.clients
    confidential = await clients.create(WEB, "test")
    public = await clients.create(
        ClientSpec(name="SPA", public=True, redirect_uris=("https://spa.example.com/cb",)), "test"
    )
    cid, pid = confidential.client.client_id, public.client.client_id
    assert (await clients.authenticate(cid, confidential.client_secret)).client_id == cid
    assert (await clients.authenticate(pid, None)).public
    assert (await clients.authenticate(pid, "")).public  # an empty secret is no secret
    failures = [
        (cid, None),
        (cid, ""),
        (cid, confidential.client_secret.upper()),  # type: ignore[union-attr]
        (cid, "x" * 5000),
        (pid, "anything"),  # a public client has no secret to send
        (pid, confidential.client_secret),
        ("unknown-client", confidential.client_secret),
        ("a\x00b", "x"),  # never reaches PostgreSQL, which refuses NUL characters
        ("x" * 500, "x"),
        ("", ""),
    ]
    for client_id, secret in failures:
        with pytest.raises(InvalidClient) as caught:
            await clients.authenticate(client_id, secret)
        assert caught.value.code == "invalid_client", (client_id, secret)
    for odd in ("a\x00b", "x" * 500, "", "no such"):
        with pytest.raises(ClientNotFound):
            await clients.get(odd)


async def test_deleting_a_client_runs_the_hooks_in_its_transaction(harness):
    clients = harness.services.clients
    keep = await clients.create(WEB, "test")
    seen: list[str] = []

    async def remember(session, client_id: str) -> None:  # type: ignore[no-untyped-def]
        seen.append(client_id)
        assert session.in_transaction()

    clients.on_delete(remember)
    await clients.delete(keep.client.client_id, "test")
    assert seen == [keep.client.client_id]

    other = await clients.create(WEB, "test")

    async def refuse(session, client_id: str) -> None:  # type: ignore[no-untyped-def]
        raise RuntimeError("grants could not end")

    clients.on_delete(refuse)
    with pytest.raises(RuntimeError):
        await clients.delete(other.client.client_id, "test")
    # The deletion was undone with the hook's failure, and not audited.
    assert (await clients.get(other.client.client_id)).name == "Family Web"
    actions = [
        e.action for e in await harness.services.admin.audit_log(10) if e.target == other.client.client_id
    ]
    assert actions == ["client.create"]


async def test_a_change_that_changes_nothing_is_not_recorded(harness):
    h = harness
    created = await h.services.clients.create(WEB, "test")
    h.clock.advance(30)
    same = await h.services.clients.update(
        created.client.client_id,
        ClientChanges(name=" Family Web ", redirect_uris=["https://web.example.com/cb"], public=False),
        "test",
    )
    assert same.client == created.client and same.grants_ended == 0
    actions = [e.action for e in await h.services.admin.audit_log(10)]
    assert actions.count("client.update") == 0
    with pytest.raises(ClientNotFound):
        await h.services.clients.update("no-such-client", ClientChanges(name="x"), "test")
    with pytest.raises(ClientNotFound):
        await h.services.clients.rotate_secret("no-such-client", "test")


async def test_the_longest_registration_fits_every_column(harness):
    clients = harness.services.clients
    name = "芽" * 100
    uris = tuple(f"https://web.example.com/{i:02d}/" + "p" * 1970 for i in range(20))
    created = await clients.create(
        ClientSpec(
            name=name,
            redirect_uris=uris,
            post_logout_redirect_uris=uris,
            backchannel_logout_uri=uris[0],
            scopes=("openid", "profile", "email", "offline_access", "sproutgate"),
            grant_types=("authorization_code", "refresh_token", "client_credentials"),
        ),
        "test",
    )
    stored = await clients.get(created.client.client_id)
    assert stored == created.client
    assert stored.name == name and stored.redirect_uris == uris and len(stored.redirect_uris[0]) <= 2000
