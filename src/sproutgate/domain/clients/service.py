"""The OAuth 2.0 / OpenID Connect client registry: registering, changing and removing the apps
that sign people in through SproutGate, and authenticating them at the token endpoint. The CLI
(``sproutgate clients ...``), the admin API (``/api/admin/clients``) and the admin console call
these; every change is one transaction with its own audit record (actions ``client.create``,
``client.update``, ``client.rotate_secret``, ``client.delete``), so no face audits anything.

Security invariants kept here: a client secret is generated here (256 bits from ``secrets``),
returned once, stored only as a keyed hash (``rules.client_secret_hash``) and compared in
constant time; an unknown client costs the same hash as a known one; every registration passes
``rules.checked_spec`` (redirect URI rules of RFC 6749 §3.1.2 and RFC 8252).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sproutgate.domain.clients.errors import ClientNotFound, InvalidClient
from sproutgate.domain.clients.rules import (
    CheckedSpec,
    Client,
    ClientChanges,
    ClientSpec,
    audit_values,
    changed_spec,
    checked_spec,
    client_secret_hash,
    is_client_id_shaped,
    new_client_id,
    new_client_secret,
)
from sproutgate.domain.clock import Clock
from sproutgate.domain.errors import Conflict
from sproutgate.storage.clients import ClientRepository
from sproutgate.storage.db import Database
from sproutgate.storage.models import AuditEvent, OAuthClient
from sproutgate.storage.repositories import AuditRepository

__all__ = [
    "Client",
    "ClientChanges",
    "ClientService",
    "ClientSpec",
    "ClientUpdate",
    "CreatedClient",
    "DeleteHook",
    "UpdateHook",
]

# Called inside the deleting transaction with the client id: what other aggregates keep about a
# client (grants, consents, sessions' client lists) ends with it.
DeleteHook = Callable[[AsyncSession, str], Awaitable[None]]
# (transaction, the client before the change, the client after it) -> how many of its grants
# (signed-in sessions of an app) the change ended.
UpdateHook = Callable[[AsyncSession, Client, Client], Awaitable[int]]

# Compared against when the client is unknown, so that an unknown id costs one hash like a known one.
_DUMMY_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class CreatedClient:
    """A client and, for a confidential client just created or with a new secret, the secret
    in clear: shown once, never stored or retrievable again. None for public clients."""

    client: Client
    client_secret: str | None


@dataclass(frozen=True, slots=True)
class ClientUpdate:
    """A client after a change of its registration, and how many grants the change ended
    (``grants_ended``: the sum of what the ``on_update`` hooks ended, say the grants made
    without consent when a client stops being first-party; 0 when nothing ended)."""

    client: Client
    grants_ended: int = 0


def client_of(row: OAuthClient) -> Client:
    """The domain object of a stored client."""
    return Client(
        client_id=row.client_id,
        name=row.name,
        public=row.public,
        first_party=row.first_party,
        redirect_uris=tuple(row.redirect_uris or ()),
        post_logout_redirect_uris=tuple(row.post_logout_redirect_uris or ()),
        backchannel_logout_uri=row.backchannel_logout_uri,
        scopes=tuple(row.scopes or ()),
        grant_types=tuple(row.grant_types or ()),
        created_at=row.created_at,
        updated_at=row.updated_at,
        secret_rotated_at=row.secret_rotated_at,
    )


def _store(row: OAuthClient, checked: CheckedSpec) -> None:
    row.name = checked.name
    row.public = checked.public
    row.first_party = checked.first_party
    row.redirect_uris = list(checked.redirect_uris)
    row.post_logout_redirect_uris = list(checked.post_logout_redirect_uris)
    row.backchannel_logout_uri = checked.backchannel_logout_uri
    row.scopes = list(checked.scopes)
    row.grant_types = list(checked.grant_types)


REGISTRATION_FIELDS = (
    "name",
    "public",
    "first_party",
    "redirect_uris",
    "post_logout_redirect_uris",
    "backchannel_logout_uri",
    "scopes",
    "grant_types",
)


class ClientService:
    """Operations on registered clients. ``secret_key``: the key of the secrets' keyed hash
    (``data/keys/client-secrets.key``, shared by every instance like the other keys)."""

    def __init__(self, db: Database, clock: Clock, secret_key: bytes) -> None:
        self.db = db
        self.clock = clock
        self._key = secret_key
        self._delete_hooks: list[DeleteHook] = []
        self._update_hooks: list[UpdateHook] = []

    def on_delete(self, hook: DeleteHook) -> None:
        """Run ``hook(session, client_id)`` in the transaction that deletes a client (another
        aggregate ending the client's grants, say). A hook that raises undoes the deletion."""
        self._delete_hooks.append(hook)

    def on_update(self, hook: UpdateHook) -> None:
        """Run ``hook(session, before, after)`` in the transaction that changes a client's
        registration, when something changed (another aggregate ending what the change no
        longer allows, say); it returns how many grants it ended. A hook that raises undoes the
        change."""
        self._update_hooks.append(hook)

    def _audit(
        self, s: AsyncSession, actor: str, action: str, target: str, details: dict[str, Any], ip: str | None
    ) -> None:
        AuditRepository(s).add(
            AuditEvent(at=self.clock.now(), actor=actor, action=action, target=target, details=details, ip=ip)
        )

    async def create(self, spec: ClientSpec, actor: str, ip: str | None = None) -> CreatedClient:
        """Register a client: a new client id and, for a confidential client, a new secret
        (returned once). Audited as ``client.create`` with the registration (never the secret).
        Raises InvalidInput (``rules.checked_spec``'s field codes)."""
        checked = checked_spec(spec)
        client_id = new_client_id()
        secret = None if checked.public else new_client_secret()
        now = self.clock.now()
        row = OAuthClient(
            client_id=client_id,
            secret_hash=client_secret_hash(self._key, client_id, secret) if secret else None,
            created_at=now,
            updated_at=now,
            secret_rotated_at=None,
        )
        _store(row, checked)
        async with self.db.write() as s:
            ClientRepository(s).add(row)
            self._audit(
                s,
                actor,
                "client.create",
                client_id,
                {"fields": list(REGISTRATION_FIELDS), "values": audit_values(checked, REGISTRATION_FIELDS)},
                ip,
            )
        return CreatedClient(client_of(row), secret)

    async def list(self) -> list[Client]:
        """Every registered client, oldest first."""
        async with self.db.read() as s:
            return [client_of(r) for r in await ClientRepository(s).all()]

    async def get(self, client_id: str) -> Client:
        """The client with this id. Raises ClientNotFound (also for text that is no client id)."""
        if not is_client_id_shaped(client_id):
            raise ClientNotFound()
        async with self.db.read() as s:
            row = await ClientRepository(s).get(client_id)
            if row is None:
                raise ClientNotFound()
            return client_of(row)

    async def current(self, s: AsyncSession, client_id: str) -> Client | None:
        """The client as the caller's transaction ``s`` sees it, None when deleted; its row is
        held against changes until ``s`` ends (FOR SHARE on PostgreSQL; SQLite runs one writer
        at a time). So an ``update`` in flight is waited for and seen, and one begun later waits
        for ``s`` and its ``on_update`` hooks see what ``s`` wrote: what another aggregate
        decides from the registration inside ``s`` cannot fall between a change and the hooks
        that end what it no longer allows."""
        row = await ClientRepository(s).get(client_id, share=True)
        return client_of(row) if row is not None else None

    async def update(
        self, client_id: str, changes: ClientChanges, actor: str, ip: str | None = None
    ) -> ClientUpdate:
        """Change a client's registration; the result is checked like a new registration
        (``rules.changed_spec``). Audited as ``client.update`` with the fields that changed and
        their new values, only when something changed. The client type and secret stay.
        The ``on_update`` hooks run in the same transaction; the answer says how many grants
        they ended. Raises ClientNotFound, InvalidInput (also ``public: client_type_fixed``)."""
        if not is_client_id_shaped(client_id):
            raise ClientNotFound()
        async with self.db.write() as s:
            row = await ClientRepository(s).get(client_id, lock=True)
            if row is None:
                raise ClientNotFound()
            before = client_of(row)
            checked, changed = changed_spec(before, changes)
            ended = 0
            if changed:
                _store(row, checked)
                for hook in self._update_hooks:
                    ended += await hook(s, before, client_of(row))
                row.updated_at = self.clock.now()
                self._audit(
                    s,
                    actor,
                    "client.update",
                    client_id,
                    {"fields": changed, "values": audit_values(checked, changed)},
                    ip,
                )
            await s.flush()
            return ClientUpdate(client_of(row), ended)

    async def rotate_secret(self, client_id: str, actor: str, ip: str | None = None) -> CreatedClient:
        """Give a confidential client a new secret (returned once); the old one stops working at
        once. Audited as ``client.rotate_secret``. Raises ClientNotFound, Conflict
        (``public_client_has_no_secret``)."""
        if not is_client_id_shaped(client_id):
            raise ClientNotFound()
        secret = new_client_secret()
        async with self.db.write() as s:
            row = await ClientRepository(s).get(client_id, lock=True)
            if row is None:
                raise ClientNotFound()
            if row.public:
                raise Conflict("public_client_has_no_secret")
            now = self.clock.now()
            row.secret_hash = client_secret_hash(self._key, client_id, secret)
            row.secret_rotated_at = now
            row.updated_at = now
            self._audit(s, actor, "client.rotate_secret", client_id, {"fields": ["client_secret"]}, ip)
            await s.flush()
            return CreatedClient(client_of(row), secret)

    async def delete(self, client_id: str, actor: str, ip: str | None = None) -> None:
        """Remove a client; the ``on_delete`` hooks end what other aggregates keep for it, in the
        same transaction. Audited as ``client.delete`` with its name. Raises ClientNotFound."""
        if not is_client_id_shaped(client_id):
            raise ClientNotFound()
        async with self.db.write() as s:
            repo = ClientRepository(s)
            row = await repo.get(client_id, lock=True)
            if row is None:
                raise ClientNotFound()
            name = row.name
            for hook in self._delete_hooks:
                await hook(s, client_id)
            if not await repo.delete(client_id):
                raise ClientNotFound()
            self._audit(s, actor, "client.delete", client_id, {"name": name}, ip)

    async def authenticate(self, client_id: str, client_secret: str | None) -> Client:
        """The client presenting these credentials (RFC 6749 §2.3.1). A confidential client
        must present its secret; a public client must present none (``""`` counts as none).
        The secret's hash is computed and compared in constant time whether or not the client
        exists. Raises InvalidClient, one answer for every failure."""
        secret = client_secret or None
        row = None
        if is_client_id_shaped(client_id):
            async with self.db.read() as s:
                row = await ClientRepository(s).get(client_id)
        stored = row.secret_hash if row is not None and row.secret_hash else _DUMMY_HASH
        presented = client_secret_hash(
            self._key, client_id if isinstance(client_id, str) else "", secret or ""
        )
        matched = hmac.compare_digest(presented, stored)
        if row is None:
            raise InvalidClient()
        if row.public:
            if secret is not None:
                raise InvalidClient()
        elif secret is None or not row.secret_hash or not matched:
            raise InvalidClient()
        return client_of(row)
