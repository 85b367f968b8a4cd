"""``sproutgate clients``: the OAuth 2.0 / OpenID Connect client registry from the command line
(issue 12), over ``ClientService`` like the admin API and the console.

Every command prints one JSON object (``list``: one JSON array, or a table with ``--table``);
``create`` and ``rotate-secret`` print a confidential client's ``client_secret``, the only time
it is ever shown; ``update`` adds ``grants_ended`` and says on stderr how many grants a change
ended. Errors go to stderr: exit 1 for an unknown client, 2 for a refused value."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from sproutgate.cli_services import run_with_services

if TYPE_CHECKING:
    from sproutgate.domain.clients.service import Client, ClientUpdate, CreatedClient
    from sproutgate.services import Services

clients_app = typer.Typer(
    help="OAuth / OpenID Connect clients: the apps that sign people in here.", no_args_is_help=True
)

ACTOR = "cli"  # the audit trail's actor for changes made here


def _when(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def client_json(client: Client, secret: str | None = None) -> dict[str, Any]:
    """The JSON object the commands print for a client (snake_case, RFC 7591 names where there
    are some); ``client_secret`` only when given (just created or rotated)."""
    out: dict[str, Any] = {"client_id": client.client_id}
    if secret is not None:
        out["client_secret"] = secret
    out.update(
        {
            "name": client.name,
            "public": client.public,
            "first_party": client.first_party,
            "token_endpoint_auth_method": "none" if client.public else "client_secret_basic",
            "redirect_uris": list(client.redirect_uris),
            "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
            "backchannel_logout_uri": client.backchannel_logout_uri,
            "scopes": list(client.scopes),
            "grant_types": list(client.grant_types),
            "created_at": _when(client.created_at),
            "updated_at": _when(client.updated_at),
        }
    )
    return out


def _print(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False))


def _run(work: Any) -> Any:
    """``work(services)`` with the domain's refusals said on stderr: exit 1 for an unknown
    client or a conflict, 2 for refused values (each field with its message)."""
    from sproutgate import i18n
    from sproutgate.domain.errors import Conflict, InvalidInput, NotFound

    try:
        return run_with_services(work)
    except NotFound:
        typer.secho("no such client", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    except Conflict as exc:
        typer.secho(i18n.t(exc.code, "en"), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    except InvalidInput as exc:
        for name, code in exc.fields.items():
            typer.secho(f"{name} {i18n.field_message(code, 'en')} ({code})", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None


@clients_app.command("create")
def clients_create(
    name: str = typer.Option(..., "--name", help="The name people see on the consent page."),
    redirect_uri: list[str] = typer.Option(
        [], "--redirect-uri", help="A redirect URI (repeat for several); matched exactly."
    ),
    post_logout_redirect_uri: list[str] = typer.Option(
        [], "--post-logout-redirect-uri", help="Where the app may send people after signing out."
    ),
    backchannel_logout_uri: str = typer.Option(
        None, "--backchannel-logout-uri", help="Where logout tokens are posted (OIDC Back-Channel Logout)."
    ),
    public: bool = typer.Option(
        False, "--public", help="A public client (single-page or native app): no secret, PKCE only."
    ),
    first_party: bool = typer.Option(
        False, "--first-party", help="One of the family's own apps: no consent page."
    ),
    scope: list[str] = typer.Option(
        [], "--scope", help="An allowed scope (repeat); default openid, profile, email."
    ),
    grant_type: list[str] = typer.Option(
        [], "--grant-type", help="An allowed grant (repeat); default authorization_code, refresh_token."
    ),
) -> None:
    """Register a client; prints it as JSON, with the client_secret of a confidential client
    (shown only now)."""
    from sproutgate.domain.clients.rules import ClientSpec

    spec = ClientSpec(
        name=name,
        redirect_uris=tuple(redirect_uri),
        post_logout_redirect_uris=tuple(post_logout_redirect_uri),
        backchannel_logout_uri=backchannel_logout_uri or None,
        public=public,
        first_party=first_party,
        scopes=tuple(scope) or None,
        grant_types=tuple(grant_type) or None,
    )

    async def work(services: Services) -> CreatedClient:
        return await services.clients.create(spec, ACTOR)

    created = _run(work)
    _print(client_json(created.client, created.client_secret))


@clients_app.command("list")
def clients_list(
    table: bool = typer.Option(False, "--table", help="One line per client instead of JSON."),
) -> None:
    """Every registered client, oldest first (never a secret)."""

    async def work(services: Services) -> list[Client]:
        return await services.clients.list()

    clients = _run(work)
    if not table:
        _print([client_json(c) for c in clients])
        return
    for c in clients:
        kind = "public" if c.public else "confidential"
        party = "first-party" if c.first_party else "third-party"
        typer.echo(f"{c.client_id}  {kind:<12} {party:<11} {c.name}")


@clients_app.command("show")
def clients_show(client_id: str = typer.Argument(..., help="The client id.")) -> None:
    """One client as JSON (never its secret)."""

    async def work(services: Services) -> Client:
        return await services.clients.get(client_id)

    _print(client_json(_run(work)))


@clients_app.command("update")
def clients_update(
    client_id: str = typer.Argument(..., help="The client id."),
    name: str = typer.Option(None, "--name", help="A new name."),
    redirect_uri: list[str] = typer.Option(
        None, "--redirect-uri", help="The redirect URIs (repeat; replaces the list)."
    ),
    post_logout_redirect_uri: list[str] = typer.Option(
        None, "--post-logout-redirect-uri", help="The post-logout redirect URIs (repeat; replaces the list)."
    ),
    no_post_logout_redirect_uris: bool = typer.Option(
        False, "--no-post-logout-redirect-uris", help="Remove every post-logout redirect URI."
    ),
    backchannel_logout_uri: str = typer.Option(
        None, "--backchannel-logout-uri", help="A new back-channel logout URI ('' removes it)."
    ),
    first_party: bool = typer.Option(
        None, "--first-party/--third-party", help="Whether people skip the consent page."
    ),
    scope: list[str] = typer.Option(None, "--scope", help="The allowed scopes (repeat; replaces the list)."),
    grant_type: list[str] = typer.Option(
        None, "--grant-type", help="The allowed grants (repeat; replaces the list)."
    ),
) -> None:
    """Change a client's registration (its type and secret stay); prints it as JSON with
    grants_ended: how many people's grants the change ended (made third-party: those given
    without consent), also said on stderr when there were some."""
    from sproutgate.domain.clients.rules import ClientChanges

    changes = ClientChanges()
    if name is not None:
        changes.name = name
    if redirect_uri:
        changes.redirect_uris = tuple(redirect_uri)
    if no_post_logout_redirect_uris:
        changes.post_logout_redirect_uris = ()
    elif post_logout_redirect_uri:
        changes.post_logout_redirect_uris = tuple(post_logout_redirect_uri)
    if backchannel_logout_uri is not None:
        changes.backchannel_logout_uri = backchannel_logout_uri or None
    if first_party is not None:
        changes.first_party = first_party
    if scope:
        changes.scopes = tuple(scope)
    if grant_type:
        changes.grant_types = tuple(grant_type)

    async def work(services: Services) -> ClientUpdate:
        return await services.clients.update(client_id, changes, ACTOR)

    done: ClientUpdate = _run(work)
    _print({**client_json(done.client), "grants_ended": done.grants_ended})
    if done.grants_ended:
        grants = "grant" if done.grants_ended == 1 else "grants"
        typer.secho(
            f"{done.grants_ended} {grants} made without consent ended: the client is no longer first-party",
            err=True,
        )


@clients_app.command("rotate-secret")
def clients_rotate_secret(client_id: str = typer.Argument(..., help="The client id.")) -> None:
    """Give a confidential client a new secret (printed only now); the old one stops working."""

    async def work(services: Services) -> CreatedClient:
        return await services.clients.rotate_secret(client_id, ACTOR)

    created = _run(work)
    _print(client_json(created.client, created.client_secret))


@clients_app.command("delete")
def clients_delete(client_id: str = typer.Argument(..., help="The client id.")) -> None:
    """Remove a client; its grants end with it."""

    async def work(services: Services) -> None:
        await services.clients.delete(client_id, ACTOR)

    _run(work)
    _print({"client_id": client_id, "deleted": True})
