"""The OAuth / OpenID Connect client registry for administrators (/api/admin/clients, issue 12):
list, register, show, change, rotate the secret of and remove the apps that sign people in
through SproutGate. The same admin credentials as /api/admin/users; every change is audited by
``ClientService``. A confidential client's secret appears in the answer to its creation or
rotation only (``clientSecret``), never again."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field, StrictBool, StringConstraints

from sproutgate.api.deps import client_ip, get_services
from sproutgate.api.gate.routes import ADMIN_HEADERS, _errors, admin_actor
from sproutgate.api.gate.schemas import DeletedOut, _In, iso
from sproutgate.api.problems import CAMEL, wire_field_names
from sproutgate.domain.clients.rules import NAME_MAX, URI_MAX, URIS_MAX, Client, ClientChanges, ClientSpec
from sproutgate.domain.registry import DomainServices

router = APIRouter(prefix="/api", dependencies=[Depends(wire_field_names(CAMEL))])
TAGS: list[str | Any] = ["sproutgate-admin"]

# Longer than the domain allows, so that the domain's rules (with their own codes) decide.
_Uri = Annotated[str, StringConstraints(max_length=URI_MAX + 1)]
_Word = Annotated[str, StringConstraints(max_length=64)]


class AdminClientIn(_In):
    """A registration (POST) or the fields to change (PUT; absent or null: left as they are,
    except ``backchannelLogoutUri: null``, which removes it)."""

    name: str | None = Field(default=None, max_length=NAME_MAX * 2)
    redirectUris: list[_Uri] | None = Field(default=None, max_length=URIS_MAX * 2)
    postLogoutRedirectUris: list[_Uri] | None = Field(default=None, max_length=URIS_MAX * 2)
    backchannelLogoutUri: _Uri | None = None
    public: StrictBool | None = None
    firstParty: StrictBool | None = None
    scopes: list[_Word] | None = Field(default=None, max_length=20)
    grantTypes: list[_Word] | None = Field(default=None, max_length=20)


class AdminClient(BaseModel):
    clientId: str
    name: str
    public: bool
    firstParty: bool
    tokenEndpointAuthMethod: str  # "client_secret_basic" (confidential) or "none" (public)
    redirectUris: list[str]
    postLogoutRedirectUris: list[str]
    backchannelLogoutUri: str | None
    scopes: list[str]
    grantTypes: list[str]
    createdAt: str
    updatedAt: str


class AdminClientOut(BaseModel):
    client: AdminClient


class AdminClientUpdated(AdminClientOut):
    # How many grants the change ended: those made without consent, when ``firstParty`` turned
    # false (the people are asked to consent next time); 0 when the change ended none.
    grantsEnded: int


class AdminClientCreated(BaseModel):
    client: AdminClient
    # The secret of a confidential client, shown this once; null for public clients.
    clientSecret: str | None


class AdminClientList(BaseModel):
    clients: list[AdminClient]


def admin_client(c: Client) -> AdminClient:
    return AdminClient(
        clientId=c.client_id,
        name=c.name,
        public=c.public,
        firstParty=c.first_party,
        tokenEndpointAuthMethod="none" if c.public else "client_secret_basic",
        redirectUris=list(c.redirect_uris),
        postLogoutRedirectUris=list(c.post_logout_redirect_uris),
        backchannelLogoutUri=c.backchannel_logout_uri,
        scopes=list(c.scopes),
        grantTypes=list(c.grant_types),
        createdAt=iso(c.created_at),
        updatedAt=iso(c.updated_at),
    )


def _tuple(value: list[str] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _spec(body: AdminClientIn) -> ClientSpec:
    return ClientSpec(
        name=body.name or "",
        redirect_uris=_tuple(body.redirectUris) or (),
        post_logout_redirect_uris=_tuple(body.postLogoutRedirectUris) or (),
        backchannel_logout_uri=body.backchannelLogoutUri or None,
        public=bool(body.public),
        first_party=bool(body.firstParty),
        scopes=_tuple(body.scopes),
        grant_types=_tuple(body.grantTypes),
    )


_CHANGES = {
    "name": "name",
    "redirectUris": "redirect_uris",
    "postLogoutRedirectUris": "post_logout_redirect_uris",
    "backchannelLogoutUri": "backchannel_logout_uri",
    "public": "public",
    "firstParty": "first_party",
    "scopes": "scopes",
    "grantTypes": "grant_types",
}


def _changes(body: AdminClientIn) -> ClientChanges:
    changes = ClientChanges()
    for wire, name in _CHANGES.items():
        if wire in body.model_fields_set:
            value = getattr(body, wire)
            setattr(changes, name, tuple(value) if isinstance(value, list) else value)
    return changes


@router.get("/admin/clients", response_model=AdminClientList, responses=_errors(401), tags=TAGS)
async def admin_list_clients(
    response: Response,
    actor: str = Depends(admin_actor),
    services: DomainServices = Depends(get_services),
) -> AdminClientList:
    """List the registered OAuth / OpenID Connect clients, oldest first (never a secret)."""
    clients = await services.clients.list()
    response.headers.update(ADMIN_HEADERS)
    return AdminClientList(clients=[admin_client(c) for c in clients])


@router.post(
    "/admin/clients",
    status_code=201,
    response_model=AdminClientCreated,
    responses=_errors(401, 422),
    tags=TAGS,
)
async def admin_create_client(
    body: AdminClientIn,
    request: Request,
    response: Response,
    actor: str = Depends(admin_actor),
    services: DomainServices = Depends(get_services),
) -> AdminClientCreated:
    """Register a client; a confidential one's ``clientSecret`` is in this answer only."""
    created = await services.clients.create(_spec(body), actor, client_ip(request))
    response.headers.update(ADMIN_HEADERS)
    return AdminClientCreated(client=admin_client(created.client), clientSecret=created.client_secret)


@router.get(
    "/admin/clients/{client_id}", response_model=AdminClientOut, responses=_errors(401, 404), tags=TAGS
)
async def admin_get_client(
    client_id: str,
    response: Response,
    actor: str = Depends(admin_actor),
    services: DomainServices = Depends(get_services),
) -> AdminClientOut:
    """One client's registration (never its secret)."""
    client = await services.clients.get(client_id)
    response.headers.update(ADMIN_HEADERS)
    return AdminClientOut(client=admin_client(client))


@router.put(
    "/admin/clients/{client_id}",
    response_model=AdminClientUpdated,
    responses=_errors(401, 404, 422),
    tags=TAGS,
)
async def admin_update_client(
    client_id: str,
    body: AdminClientIn,
    request: Request,
    response: Response,
    actor: str = Depends(admin_actor),
    services: DomainServices = Depends(get_services),
) -> AdminClientUpdated:
    """Change a client's registration (fields left out stay); its type (``public``) is fixed.
    ``grantsEnded``: how many grants the change ended (made without consent, when the client
    stops being first-party; 0 otherwise), as ``sproutgate clients update`` prints."""
    done = await services.clients.update(client_id, _changes(body), actor, client_ip(request))
    response.headers.update(ADMIN_HEADERS)
    return AdminClientUpdated(client=admin_client(done.client), grantsEnded=done.grants_ended)


@router.post(
    "/admin/clients/{client_id}/secret",
    response_model=AdminClientCreated,
    responses=_errors(401, 404, 409),
    tags=TAGS,
)
async def admin_rotate_client_secret(
    client_id: str,
    request: Request,
    response: Response,
    actor: str = Depends(admin_actor),
    services: DomainServices = Depends(get_services),
) -> AdminClientCreated:
    """Give a confidential client a new secret (in this answer only); the old one stops working."""
    created = await services.clients.rotate_secret(client_id, actor, client_ip(request))
    response.headers.update(ADMIN_HEADERS)
    return AdminClientCreated(client=admin_client(created.client), clientSecret=created.client_secret)


@router.delete(
    "/admin/clients/{client_id}", response_model=DeletedOut, responses=_errors(401, 404), tags=TAGS
)
async def admin_delete_client(
    client_id: str,
    request: Request,
    response: Response,
    actor: str = Depends(admin_actor),
    services: DomainServices = Depends(get_services),
) -> DeletedOut:
    """Remove a client; its grants end with it."""
    await services.clients.delete(client_id, actor, client_ip(request))
    response.headers.update(ADMIN_HEADERS)
    return DeletedOut(deleted=True)
