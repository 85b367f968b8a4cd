"""The admin console's apps page (issue 12): the OAuth / OpenID Connect clients, registered,
changed, given a new secret and removed through ``services.clients`` (which audits each change),
as the CLI and /api/admin/clients do. A confidential client's secret is shown once, on the page
answering its creation or rotation (``Cache-Control: no-store``), never in a URL."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.datastructures import FormData
from starlette.responses import Response

from sproutgate.domain.clients.errors import ClientNotFound
from sproutgate.domain.clients.rules import (
    DEFAULT_GRANT_TYPES,
    DEFAULT_SCOPES,
    GRANT_TYPES,
    SCOPES,
    Client,
    ClientChanges,
    ClientSpec,
)
from sproutgate.domain.errors import DomainError
from sproutgate.web.admin_pages import ADMIN_PATH, TOKEN_ACTOR, _sign_in_page, admin_actor
from sproutgate.web.page import FormErrors, Page, form_text, page_context

router = APIRouter(include_in_schema=False)

CLIENTS_PATH = f"{ADMIN_PATH}/clients"


def _lines(form: FormData, name: str) -> tuple[str, ...]:
    """A textarea of URIs, one per line (blank lines and surrounding spaces ignored)."""
    return tuple(line.strip() for line in form_text(form, name).splitlines() if line.strip())


def _checked(form: FormData, name: str) -> tuple[str, ...]:
    return tuple(v for v in form.getlist(name) if isinstance(v, str))


def _values_of(client: Client) -> dict[str, Any]:
    return {
        "name": client.name,
        "redirect_uris": "\n".join(client.redirect_uris),
        "post_logout_redirect_uris": "\n".join(client.post_logout_redirect_uris),
        "backchannel_logout_uri": client.backchannel_logout_uri or "",
        "public": client.public,
        "first_party": client.first_party,
        "scopes": list(client.scopes),
        "grant_types": list(client.grant_types),
    }


def _values_of_form(form: FormData) -> dict[str, Any]:
    return {
        "name": form_text(form, "name"),
        "redirect_uris": form_text(form, "redirect_uris"),
        "post_logout_redirect_uris": form_text(form, "post_logout_redirect_uris"),
        "backchannel_logout_uri": form_text(form, "backchannel_logout_uri"),
        "public": form.get("public") == "on",
        "first_party": form.get("first_party") == "on",
        "scopes": list(_checked(form, "scopes")),
        "grant_types": list(_checked(form, "grant_types")),
    }


NEW_CLIENT = {
    "name": "",
    "redirect_uris": "",
    "post_logout_redirect_uris": "",
    "backchannel_logout_uri": "",
    "public": False,
    "first_party": False,
    "scopes": list(DEFAULT_SCOPES),
    "grant_types": list(DEFAULT_GRANT_TYPES),
}


def _render(page: Page, template: str, actor: str, status: int = 200, **values: Any) -> Response:
    response = page.render(
        template,
        status=status,
        actor=actor,
        token_actor=TOKEN_ACTOR,
        all_scopes=SCOPES,
        all_grant_types=GRANT_TYPES,
        **values,
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def _list_page(
    page: Page, actor: str, errors: FormErrors | None = None, values: dict[str, Any] | None = None
) -> Response:
    errors = errors or FormErrors()
    return _render(
        page,
        "admin_clients.html",
        actor,
        status=errors.status,
        clients=await page.services.clients.list(),
        errors=errors,
        values=values or NEW_CLIENT,
    )


def _secret_page(page: Page, actor: str, client: Client, secret: str | None, *, created: bool) -> Response:
    return _render(page, "admin_client_secret.html", actor, client=client, secret=secret, created=created)


async def _edit_page(
    page: Page,
    actor: str,
    client: Client,
    errors: FormErrors | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    errors = errors or FormErrors()
    return _render(
        page,
        "admin_client_edit.html",
        actor,
        status=errors.status,
        client=client,
        errors=errors,
        values=values or _values_of(client),
    )


@router.get(CLIENTS_PATH)
async def admin_clients(page: Page = Depends(page_context)) -> Response:
    """The registered apps, and the form registering one."""
    actor = await admin_actor(page)
    if actor is None:
        return _sign_in_page(page)
    return await _list_page(page, actor)


@router.post(CLIENTS_PATH)
async def admin_create_client(page: Page = Depends(page_context)) -> Response:
    """Register an app; the answer shows a confidential app's secret, this once."""
    actor = await admin_actor(page)
    if actor is None:
        return _sign_in_page(page)
    form = await page.form()
    spec = ClientSpec(
        name=form_text(form, "name"),
        redirect_uris=_lines(form, "redirect_uris"),
        post_logout_redirect_uris=_lines(form, "post_logout_redirect_uris"),
        backchannel_logout_uri=form_text(form, "backchannel_logout_uri").strip() or None,
        public=form.get("public") == "on",
        first_party=form.get("first_party") == "on",
        scopes=_checked(form, "scopes"),
        grant_types=_checked(form, "grant_types"),
    )
    try:
        created = await page.services.clients.create(spec, actor, page.ctx.ip)
    except DomainError as exc:
        return await _list_page(page, actor, page.explain(exc), _values_of_form(form))
    return _secret_page(page, actor, created.client, created.client_secret, created=True)


@router.get(CLIENTS_PATH + "/{client_id}")
async def admin_client_form(client_id: str, page: Page = Depends(page_context)) -> Response:
    """Edit an app's registration."""
    actor = await admin_actor(page)
    if actor is None:
        return _sign_in_page(page)
    try:
        client = await page.services.clients.get(client_id)
    except ClientNotFound:
        return page.not_found()
    return await _edit_page(page, actor, client)


@router.post(CLIENTS_PATH + "/{client_id}")
async def admin_client_submit(client_id: str, page: Page = Depends(page_context)) -> Response:
    """Save an app's registration (its type and secret stay)."""
    actor = await admin_actor(page)
    if actor is None:
        return _sign_in_page(page)
    form = await page.form()
    # Everything the form holds: the service works out what changed and audits that.
    changes = ClientChanges(
        name=form_text(form, "name"),
        redirect_uris=_lines(form, "redirect_uris"),
        post_logout_redirect_uris=_lines(form, "post_logout_redirect_uris"),
        backchannel_logout_uri=form_text(form, "backchannel_logout_uri").strip() or None,
        first_party=form.get("first_party") == "on",
        scopes=_checked(form, "scopes"),
        grant_types=_checked(form, "grant_types"),
    )
    try:
        done = await page.services.clients.update(client_id, changes, actor, page.ctx.ip)
    except ClientNotFound:
        return page.not_found()
    except DomainError as exc:
        try:
            client = await page.services.clients.get(client_id)
        except ClientNotFound:
            return page.not_found()
        values = {**_values_of_form(form), "public": client.public}
        return await _edit_page(page, actor, client, page.explain(exc), values)
    if done.grants_ended:  # no longer first-party: what its users never agreed to ended
        return page.redirect(CLIENTS_PATH, notice="client_saved_grants_ended", count=str(done.grants_ended))
    return page.redirect(CLIENTS_PATH, notice="client_saved")


@router.post(CLIENTS_PATH + "/{client_id}/secret")
async def admin_client_rotate(client_id: str, page: Page = Depends(page_context)) -> Response:
    """Give a confidential app a new secret, shown this once; the old one stops working."""
    actor = await admin_actor(page)
    if actor is None:
        return _sign_in_page(page)
    await page.form()
    try:
        rotated = await page.services.clients.rotate_secret(client_id, actor, page.ctx.ip)
    except ClientNotFound:
        return page.not_found()
    except DomainError as exc:  # a public client has no secret
        client = await page.services.clients.get(client_id)
        return await _edit_page(page, actor, client, page.explain(exc))
    return _secret_page(page, actor, rotated.client, rotated.client_secret, created=False)


@router.get(CLIENTS_PATH + "/{client_id}/delete")
async def admin_client_delete_form(client_id: str, page: Page = Depends(page_context)) -> Response:
    """Ask for confirmation before removing an app."""
    actor = await admin_actor(page)
    if actor is None:
        return _sign_in_page(page)
    try:
        client = await page.services.clients.get(client_id)
    except ClientNotFound:
        return page.not_found()
    return _render(page, "admin_client_delete.html", actor, client=client)


@router.post(CLIENTS_PATH + "/{client_id}/delete")
async def admin_client_delete(client_id: str, page: Page = Depends(page_context)) -> Response:
    """Remove the app; its grants end with it."""
    actor = await admin_actor(page)
    if actor is None:
        return _sign_in_page(page)
    await page.form()
    try:
        await page.services.clients.delete(client_id, actor, page.ctx.ip)
    except ClientNotFound:
        return page.not_found()
    return page.redirect(CLIENTS_PATH, notice="client_deleted")
