"""The end-session endpoint's operations (OpenID Connect RP-Initiated Logout 1.0): read an
app's request to sign the person out (``plan``), then end the single sign-on session
(``end``). The session ends through ``end_sessions`` like every other, so the apps it was used
with hear of it by back-channel logout (``domain.backchannel``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sproutgate.domain.clients.errors import ClientNotFound
from sproutgate.domain.clients.rules import Client
from sproutgate.domain.clients.service import ClientService
from sproutgate.domain.logout.errors import InvalidLogoutRequest
from sproutgate.domain.logout.rules import (
    MAX_PARAM_LENGTH,
    EndSessionRequest,
    hint_audience,
    must_confirm,
)
from sproutgate.domain.oidc.errors import InvalidAccessToken
from sproutgate.domain.oidc.service import OidcService, with_query
from sproutgate.domain.sessions.rules import SessionEndReason
from sproutgate.domain.sessions.service import Principal, SessionService


@dataclass(frozen=True, slots=True)
class EndSessionPlan:
    """What to do with an end-session request: the client it came from (None: unknown),
    where to send the browser afterwards (the registered ``post_logout_redirect_uri`` with
    ``state``; None: a signed-out page) and whether to ask the person first."""

    request: EndSessionRequest
    client: Client | None
    redirect_to: str | None
    confirm: bool


class EndSessionService:
    """The end-session endpoint's rules over the provider (hints), the client registry
    (post-logout redirect URIs) and the sessions (the ending itself)."""

    def __init__(self, oidc: OidcService, clients: ClientService, sessions: SessionService) -> None:
        """``oidc`` reads an ``id_token_hint`` (``OidcService.id_token_hint``: an ID token of
        this provider, expired or not)."""
        self.oidc = oidc
        self.clients = clients
        self.sessions = sessions

    async def plan(self, params: Mapping[str, str], principal: Principal | None) -> EndSessionPlan:
        """Read an end-session request (its parameters, each once) made in the browser of
        ``principal`` (None: nobody signed in here). Raises InvalidLogoutRequest for a value
        too long, an ``id_token_hint`` this provider did not issue, an unknown ``client_id``
        or one that is not the hint's audience (rules module docstring)."""
        if any(len(v) > MAX_PARAM_LENGTH for v in params.values()):
            raise InvalidLogoutRequest("a parameter is too long")
        request = EndSessionRequest.from_params(params)
        client_id = request.client_id
        hint_subject: str | None = None
        if request.id_token_hint:
            try:
                claims = self.oidc.id_token_hint(request.id_token_hint)
            except InvalidAccessToken as exc:
                raise InvalidLogoutRequest("id_token_hint is not an ID token of this provider") from exc
            audience = hint_audience(claims)
            if audience is None:
                raise InvalidLogoutRequest("id_token_hint names no single audience")
            if client_id is not None and client_id != audience:
                raise InvalidLogoutRequest("client_id is not the audience of id_token_hint")
            client_id = audience
            hint_subject = claims["sub"]
        client = None
        if client_id is not None:
            try:
                client = await self.clients.get(client_id)
            except ClientNotFound as exc:
                raise InvalidLogoutRequest("unknown client_id") from exc
        target = request.post_logout_redirect_uri
        redirect_to = None
        if client is not None and target and client.allows_post_logout_redirect_uri(target):
            redirect_to = with_query(target, {"state": request.state})
        signed_in = principal.user.id if principal is not None else None
        return EndSessionPlan(request, client, redirect_to, must_confirm(hint_subject, signed_in))

    async def end(self, principal: Principal | None) -> None:
        """End the browser's single sign-on session (nothing when nobody is signed in): the
        session and the app grants that end with it, the apps told by back-channel logout."""
        if principal is not None:
            await self.sessions.sign_out(principal, SessionEndReason.END_SESSION)
