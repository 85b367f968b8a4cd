"""End-session rules (OpenID Connect RP-Initiated Logout 1.0). Pure: no I/O.

- An ``id_token_hint`` counts only when this provider issued it (§2: signature, ``iss``, the
  ID token's ``typ``); an expired one still counts (§4: "even when the exp time has passed").
- The client is the hint's audience or the ``client_id`` parameter; both given, they must agree.
- ``post_logout_redirect_uri`` is followed only when it is registered, exactly, for that client
  (§3); ``state`` then goes back with it. Anything else ends on a signed-out page.
- Without a hint that names the signed-in person, the person is asked first (§2: "the OP
  SHOULD ask the End-User whether to log out"), so another site cannot sign them out unseen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The parameters an end-session request may carry (§2); others are ignored.
PARAMS = ("id_token_hint", "logout_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales")
# Longest value accepted for each (an ID token is the long one); longer is refused.
MAX_PARAM_LENGTH = 8192


@dataclass(frozen=True, slots=True)
class EndSessionRequest:
    """What an end-session request asked, each parameter once (None when absent or empty)."""

    id_token_hint: str | None = None
    client_id: str | None = None
    post_logout_redirect_uri: str | None = None
    state: str | None = None
    ui_locales: tuple[str, ...] = ()

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> EndSessionRequest:
        def value(name: str) -> str | None:
            return params.get(name) or None

        return cls(
            id_token_hint=value("id_token_hint"),
            client_id=value("client_id"),
            post_logout_redirect_uri=value("post_logout_redirect_uri"),
            state=value("state"),
            ui_locales=tuple((params.get("ui_locales") or "").split()),
        )

    def as_params(self) -> dict[str, str]:
        """The request as parameters again (carried through the confirmation form)."""
        found = {
            "id_token_hint": self.id_token_hint,
            "client_id": self.client_id,
            "post_logout_redirect_uri": self.post_logout_redirect_uri,
            "state": self.state,
            "ui_locales": " ".join(self.ui_locales) or None,
        }
        return {k: v for k, v in found.items() if v}


def hint_audience(claims: Mapping[str, Any]) -> str | None:
    """The client an ID token was issued to: its ``aud`` (a string, or a list of one), else
    ``azp``; None when it names none or several."""
    aud = claims.get("aud")
    if isinstance(aud, list):
        aud = aud[0] if len(aud) == 1 else claims.get("azp")
    return aud if isinstance(aud, str) and aud else None


def must_confirm(hint_subject: str | None, signed_in_user: str | None) -> bool:
    """Whether the person is asked before their session ends: yes unless a valid hint names
    the person signed in here. (Nobody signed in: nothing to end, nothing to ask.)"""
    if signed_in_user is None:
        return False
    return hint_subject != signed_in_user
