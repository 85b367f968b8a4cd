"""Rules of the OAuth 2.0 / OpenID Connect client registry, as pure functions and values.

- Redirect URIs (RFC 6749 §3.1.2, RFC 8252 §7, OAuth 2.0 Security BCP RFC 9700 §4.1): absolute,
  no fragment, ASCII without white space; ``https``, or ``http`` only on a loopback host; a
  private-use scheme (``com.example.app:/cb``, reverse domain name, RFC 8252 §7.1) only for
  public (native) clients. A presented URI matches a registered one by simple string comparison
  (RFC 6749 §3.1.2.3, RFC 9700 §4.1.3), except that a registered ``http`` URI on a loopback IP
  literal matches any port (RFC 8252 §7.3): native apps listen on a port the OS picks.
- Client secrets are 256 random bits (``secrets``), shown once and stored as a keyed
  HMAC-SHA256 bound to the client id (docs/decisions/oauth-client-secrets.md); compared in
  constant time.
- Grant types: ``authorization_code``, ``refresh_token`` and, for confidential clients only,
  ``client_credentials`` (RFC 6749 §4.4: it needs client authentication). Scopes: those of
  ``SCOPES``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit

from sproutgate.domain.errors import InvalidInput
from sproutgate.domain.profiles.rules import UNSET

# The scopes a client may be allowed (issue 12), in the order they are listed back.
SCOPES: tuple[str, ...] = ("openid", "profile", "email", "offline_access", "sproutgate")
# What a client may ask for when its registration names no scope: its identity and address.
# ``offline_access`` (refresh tokens for third-party clients) and ``sproutgate`` (level and
# coins) are granted only when asked for at registration.
DEFAULT_SCOPES: tuple[str, ...] = ("openid", "profile", "email")


class GrantType(StrEnum):
    """The OAuth grants SproutGate supports (no implicit, no password grant: RFC 9700 §2.1.2, §2.4)."""

    AUTHORIZATION_CODE = "authorization_code"
    REFRESH_TOKEN = "refresh_token"
    CLIENT_CREDENTIALS = "client_credentials"


GRANT_TYPES: tuple[str, ...] = tuple(g.value for g in GrantType)
DEFAULT_GRANT_TYPES: tuple[str, ...] = (GrantType.AUTHORIZATION_CODE.value, GrantType.REFRESH_TOKEN.value)

NAME_MAX = 100  # characters of a client's display name
URI_MAX = 2000  # characters of one registered URI
URIS_MAX = 20  # URIs per list (redirect, post-logout redirect)
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SCHEME_RE = re.compile(r"^([a-z][a-z0-9+.-]*):(.+)$")  # RFC 3986 §3.1, lower case
# host[:port] as a loopback literal writes it: an IPv4 dotted quad or a bracketed IPv6 address.
_LOOPBACK_NETLOC_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[0-9.]+)(:[0-9]{1,5})?$")
_SECRET_CONTEXT = b"sproutgate oauth client secret\x00"


@dataclass(frozen=True, slots=True)
class Client:
    """A registered client as every face sees it (never its secret or the secret's hash).

    ``public``: a client that cannot keep a secret (single-page or native app, RFC 6749 §2.1);
    it authenticates with PKCE only. ``first_party``: one of the family's own apps (no consent
    page). URIs are kept as registered; ``scopes`` and ``grant_types`` in ``SCOPES`` /
    ``GRANT_TYPES`` order. Times are UTC."""

    client_id: str
    name: str
    public: bool
    first_party: bool
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    backchannel_logout_uri: str | None
    scopes: tuple[str, ...]
    grant_types: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    # When the secret was last replaced (None: never); what it protected before then is over.
    secret_rotated_at: datetime | None = None

    @property
    def confidential(self) -> bool:
        return not self.public

    def allows_redirect_uri(self, presented: str) -> bool:
        """Whether ``presented`` is one of this client's redirect URIs (``redirect_uri_matches``)."""
        return redirect_uri_matches(self.redirect_uris, presented)

    def allows_post_logout_redirect_uri(self, presented: str) -> bool:
        """Whether ``presented`` is one of this client's post-logout redirect URIs (the same
        matching as redirect URIs; RP-Initiated Logout 1.0 §3)."""
        return redirect_uri_matches(self.post_logout_redirect_uris, presented)

    def allows_grant(self, grant_type: str) -> bool:
        return grant_type in self.grant_types

    def allowed_scopes(self, requested: Iterable[str]) -> tuple[str, ...]:
        """The requested scopes this client may have, in ``SCOPES`` order (unknown or not
        allowed ones dropped; the caller decides whether that is an error, RFC 6749 §3.3)."""
        wanted = set(requested)
        return tuple(s for s in self.scopes if s in wanted)


@dataclass(frozen=True, slots=True)
class ClientSpec:
    """What a registration asks for. ``scopes`` / ``grant_types`` None: the defaults
    (``DEFAULT_SCOPES``, ``DEFAULT_GRANT_TYPES``)."""

    name: str
    redirect_uris: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    backchannel_logout_uri: str | None = None
    public: bool = False
    first_party: bool = False
    scopes: tuple[str, ...] | None = None
    grant_types: tuple[str, ...] | None = None


@dataclass(slots=True)
class ClientChanges:
    """An update of a client; ``UNSET`` leaves a field as it is. ``backchannel_logout_uri``
    None (or "") removes it. ``public`` may be given only with the client's current type:
    the type is fixed at registration (it decides how the client authenticates)."""

    name: object = UNSET
    redirect_uris: object = UNSET
    post_logout_redirect_uris: object = UNSET
    backchannel_logout_uri: object = UNSET
    public: object = UNSET
    first_party: object = UNSET
    scopes: object = UNSET
    grant_types: object = UNSET

    def given(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in CHANGEABLE if getattr(self, k) is not UNSET}


CHANGEABLE = (
    "name",
    "redirect_uris",
    "post_logout_redirect_uris",
    "backchannel_logout_uri",
    "public",
    "first_party",
    "scopes",
    "grant_types",
)


# -- identifiers and secrets ------------------------------------------------------------------
CLIENT_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def new_client_id() -> str:
    """A new client id: 24 lower-case letters and digits (124 random bits). Never a leading
    ``-`` (a command line would read it as an option: ``sproutgate clients show -x...``) nor
    ``_``, and the same in any case-insensitive log search. Ids made before 2026-11-30 may hold
    ``-`` and ``_`` and stay valid (``CLIENT_ID_RE``)."""
    return "".join(secrets.choice(CLIENT_ID_ALPHABET) for _ in range(24))


def is_client_id_shaped(client_id: object) -> bool:
    """Whether ``client_id`` could be a client id at all (so no odd text reaches the database)."""
    return isinstance(client_id, str) and CLIENT_ID_RE.fullmatch(client_id) is not None


def new_client_secret() -> str:
    """A new client secret: 256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def client_secret_hash(key: bytes, client_id: str, secret: str) -> str:
    """The stored form of a client secret: HMAC-SHA256 under the deployment's key, bound to
    the client id (a hash copied to another row does not verify). Hex, 64 characters.

    A fast keyed hash suffices: the secret is 256 random bits, so there is nothing to guess
    offline even without the key, and a slow hash would cost every token request CPU time."""
    message = _SECRET_CONTEXT + client_id.encode() + b"\x00" + secret.encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def secret_matches(key: bytes, client_id: str, presented: str, stored_hash: str) -> bool:
    """Whether ``presented`` is the secret whose hash is ``stored_hash``, in constant time."""
    return hmac.compare_digest(client_secret_hash(key, client_id, presented), stored_hash)


# -- URIs -------------------------------------------------------------------------------------
def _plain_ascii(uri: str) -> bool:
    """Printable ASCII without white space or backslash (RFC 3986 characters, roughly)."""
    return all(0x20 < ord(c) < 0x7F for c in uri) and "\\" not in uri


def _loopback_host(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _port_ok(port: str | None) -> bool:
    """A URI's ``:port`` (None: none given) names a TCP port, 1 to 65535 (RFC 793; a native app
    listens on one the OS gives it, never 0). The loopback any-port rule matches only these:
    five digits alone would let ``:99999`` through, a URI no app can listen on."""
    return port is None or 1 <= int(port[1:]) <= 65535


def uri_problem(uri: object, *, custom_scheme: bool) -> str | None:
    """Why ``uri`` cannot be registered as a redirect (or post-logout redirect, or back-channel
    logout) URI, as a field error code; None when it can.

    ``https`` with a host; ``http`` only on a loopback host (``127.0.0.1``, ``[::1]``,
    ``localhost``: RFC 8252 §7.3, §8.3); a private-use scheme containing a period (reverse
    domain name, RFC 8252 §7.1) only when ``custom_scheme`` (public clients); never a fragment
    (RFC 6749 §3.1.2) nor user information; ASCII without white space, at most ``URI_MAX``
    characters."""
    if not isinstance(uri, str) or not uri:
        return "field_required"
    if len(uri) > URI_MAX or not _plain_ascii(uri):
        return "invalid_redirect_uri"
    if "#" in uri:
        return "redirect_uri_fragment"
    m = _SCHEME_RE.match(uri)
    if m is None:
        return "invalid_redirect_uri"
    scheme = m.group(1)
    if scheme in ("http", "https"):
        try:
            parts = urlsplit(uri)
            port = parts.port  # raises ValueError on a bad port (not digits, above 65535)
        except ValueError:
            return "invalid_redirect_uri"
        if port is not None and not _port_ok(f":{port}"):
            return "invalid_redirect_uri"
        if not uri.startswith(f"{scheme}://") or not parts.hostname or "@" in parts.netloc:
            return "invalid_redirect_uri"
        if scheme == "http" and not (_loopback_host(parts.hostname) or parts.hostname == "localhost"):
            return "insecure_redirect_uri"
        return None
    if not custom_scheme:
        return "custom_scheme_needs_public_client"
    if "." not in scheme:
        return "invalid_custom_scheme"
    return None


def is_loopback_redirect(uri: str) -> bool:
    """Whether ``uri`` is an ``http`` redirect to a loopback host (``127.0.0.1``, ``[::1]``,
    ``localhost``; RFC 8252 §7.3, §8.3): what is sent there lands on whichever machine's browser
    followed it, not on a server of the client's."""
    if not uri.startswith("http://"):
        return False
    try:
        host = urlsplit(uri).hostname
    except ValueError:
        return False
    return _loopback_host(host) or host == "localhost"


def _loopback_key(uri: str) -> tuple[str, str, str] | None:
    """(host, path, query) of an ``http`` URI on a loopback IP literal, the port left out; None
    for any other URI. Strict: user information, a fragment or odd characters give None."""
    if not uri.startswith("http://") or not _plain_ascii(uri) or "#" in uri:
        return None
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    m = _LOOPBACK_NETLOC_RE.fullmatch(parts.netloc)
    if m is None or not _loopback_host(parts.hostname) or not _port_ok(m.group(2)):
        return None
    return (m.group(1), parts.path, parts.query)


def redirect_uri_matches(registered: Iterable[str], presented: str) -> bool:
    """Whether ``presented`` is one of ``registered``: by simple string comparison (RFC 6749
    §3.1.2.3; no normalisation, no prefixes), except that a registered ``http`` URI on a
    loopback IP literal (``http://127.0.0.1/cb``, ``http://[::1]:8000/cb``) matches the same
    URI with any port (RFC 8252 §7.3), a real one (1 to 65535). ``localhost`` gets no such
    allowance (RFC 8252 §8.3)."""
    if not isinstance(presented, str):
        return False
    presented_key: tuple[str, str, str] | None | bool = False  # computed on first need
    for uri in registered:
        if uri == presented:
            return True
        key = _loopback_key(uri)
        if key is None:
            continue
        if presented_key is False:
            presented_key = _loopback_key(presented)
        if presented_key is not None and key == presented_key:
            return True
    return False


# -- registrations ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CheckedSpec:
    """A registration that passed ``checked_spec``: URIs de-duplicated in the order given,
    scopes and grant types in canonical order, the name trimmed."""

    name: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    backchannel_logout_uri: str | None
    public: bool
    first_party: bool
    scopes: tuple[str, ...]
    grant_types: tuple[str, ...]


def _uris(value: object, name: str, errors: dict[str, str], *, custom_scheme: bool) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        errors[name] = "invalid_type"
        return ()
    uris = tuple(dict.fromkeys(value))
    if len(uris) > URIS_MAX:
        errors[name] = "too_many_uris"
        return ()
    for uri in uris:
        problem = uri_problem(uri, custom_scheme=custom_scheme)
        if problem:
            errors[name] = "invalid_redirect_uri" if problem == "field_required" else problem
            return ()
    return uris  # type: ignore[return-value]  # each entry checked above


def _choices(
    value: object, allowed: tuple[str, ...], name: str, unknown: str, errors: dict[str, str]
) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        errors[name] = "invalid_type"
        return ()
    wanted = set()
    for item in value:
        if item not in allowed:
            errors[name] = unknown
            return ()
        wanted.add(item)
    return tuple(a for a in allowed if a in wanted)


def checked_spec(spec: ClientSpec) -> CheckedSpec:
    """``spec`` checked against every registration rule, normalised. Raises InvalidInput with
    field -> code (domain field names): ``name`` (field_required, too_long, invalid_value),
    ``redirect_uris`` / ``post_logout_redirect_uris`` / ``backchannel_logout_uri`` (the codes of
    ``uri_problem``, too_many_uris; field_required when ``authorization_code`` is allowed and no
    redirect URI is given), ``scopes`` (unknown_scope), ``grant_types`` (unknown_grant_type,
    field_required, client_credentials_needs_confidential_client,
    refresh_token_needs_authorization_code)."""
    errors: dict[str, str] = {}
    name = spec.name.strip() if isinstance(spec.name, str) else ""
    if not name:
        errors["name"] = "field_required"
    elif len(name) > NAME_MAX:
        errors["name"] = "client_name_too_long"
    elif any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        errors["name"] = "invalid_value"
    public = spec.public is True
    redirect_uris = _uris(spec.redirect_uris, "redirect_uris", errors, custom_scheme=public)
    post_logout = _uris(
        spec.post_logout_redirect_uris, "post_logout_redirect_uris", errors, custom_scheme=public
    )
    backchannel = spec.backchannel_logout_uri or None
    if backchannel is not None:
        problem = uri_problem(backchannel, custom_scheme=False)
        if problem:
            errors["backchannel_logout_uri"] = problem
    scopes = _choices(
        DEFAULT_SCOPES if spec.scopes is None else spec.scopes, SCOPES, "scopes", "unknown_scope", errors
    )
    grants = _choices(
        DEFAULT_GRANT_TYPES if spec.grant_types is None else spec.grant_types,
        GRANT_TYPES,
        "grant_types",
        "unknown_grant_type",
        errors,
    )
    if "grant_types" not in errors:
        if not grants:
            errors["grant_types"] = "field_required"
        elif public and GrantType.CLIENT_CREDENTIALS in grants:
            errors["grant_types"] = "client_credentials_needs_confidential_client"
        elif GrantType.REFRESH_TOKEN in grants and GrantType.AUTHORIZATION_CODE not in grants:
            errors["grant_types"] = "refresh_token_needs_authorization_code"
        elif GrantType.AUTHORIZATION_CODE in grants and not redirect_uris and "redirect_uris" not in errors:
            errors["redirect_uris"] = "field_required"
    if errors:
        raise InvalidInput(errors)
    return CheckedSpec(
        name=name,
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=post_logout,
        backchannel_logout_uri=backchannel,
        public=public,
        first_party=spec.first_party is True,
        scopes=scopes,
        grant_types=grants,
    )


def spec_of(client: Client) -> ClientSpec:
    """The registration ``client`` has now, as a spec (to apply changes to)."""
    return ClientSpec(
        name=client.name,
        redirect_uris=client.redirect_uris,
        post_logout_redirect_uris=client.post_logout_redirect_uris,
        backchannel_logout_uri=client.backchannel_logout_uri,
        public=client.public,
        first_party=client.first_party,
        scopes=client.scopes,
        grant_types=client.grant_types,
    )


def changed_spec(client: Client, changes: ClientChanges) -> tuple[CheckedSpec, list[str]]:
    """The registration after ``changes``, checked like a new one (``checked_spec``), and the
    names of the fields that really change (in ``CHANGEABLE`` order). Raises InvalidInput, also
    with ``public: client_type_fixed`` when the change asks for the other client type."""
    given = changes.given()
    if "public" in given and given["public"] is not None and given["public"] != client.public:
        raise InvalidInput({"public": "client_type_fixed"})
    base = spec_of(client)
    values: dict[str, object] = {
        "name": given.get("name", base.name),
        "redirect_uris": given.get("redirect_uris", base.redirect_uris),
        "post_logout_redirect_uris": given.get("post_logout_redirect_uris", base.post_logout_redirect_uris),
        "backchannel_logout_uri": given.get("backchannel_logout_uri", base.backchannel_logout_uri),
        "public": client.public,
        "first_party": given.get("first_party", base.first_party),
        "scopes": given.get("scopes", base.scopes),
        "grant_types": given.get("grant_types", base.grant_types),
    }
    for name in ("redirect_uris", "post_logout_redirect_uris", "scopes", "grant_types", "name"):
        if values[name] is None:  # sent as null: left as it is
            values[name] = getattr(base, name)
    if values["first_party"] is None:
        values["first_party"] = base.first_party
    if not isinstance(values["first_party"], bool):
        raise InvalidInput({"first_party": "invalid_type"})
    checked = checked_spec(ClientSpec(**values))  # type: ignore[arg-type]  # checked inside
    now = spec_of_checked(checked)
    changed = [n for n in CHANGEABLE if n != "public" and getattr(now, n) != getattr(base, n)]
    return checked, changed


def spec_of_checked(checked: CheckedSpec) -> ClientSpec:
    return ClientSpec(
        name=checked.name,
        redirect_uris=checked.redirect_uris,
        post_logout_redirect_uris=checked.post_logout_redirect_uris,
        backchannel_logout_uri=checked.backchannel_logout_uri,
        public=checked.public,
        first_party=checked.first_party,
        scopes=checked.scopes,
        grant_types=checked.grant_types,
    )


def audit_values(checked: CheckedSpec, names: Iterable[str]) -> dict[str, object]:
    """The audit record's values of a client registration for ``names`` (no secret is part of
    a registration; URIs and scopes are configuration, not personal data)."""
    out: dict[str, object] = {}
    for n in names:
        value = getattr(checked, n)
        out[n] = list(value) if isinstance(value, tuple) else value
    return out
