"""Account rules shared by every face: email addresses, passwords, account names, redirects,
what a new user starts with, and what replacing a primary email does to the old one."""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from sproutgate.domain.errors import InvalidInput
from sproutgate.i18n import DEFAULT_LANG

ACCOUNT_MIN_LENGTH = 3
ACCOUNT_MAX_LENGTH = 32
ACCOUNT_RE = re.compile(rf"^[A-Za-z0-9_.\-]{{{ACCOUNT_MIN_LENGTH},{ACCOUNT_MAX_LENGTH}}}$")
# What an account name's error message names ({min}/{max} characters).
ACCOUNT_LIMITS = {"min": ACCOUNT_MIN_LENGTH, "max": ACCOUNT_MAX_LENGTH}


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 6
    max_length: int = 128
    check_common: bool = True

    def limits(self) -> dict[str, int]:
        """The numbers a password's error message names: ``min`` and ``max`` characters."""
        return {"min": self.min_length, "max": self.max_length}

    def problems(self, password: str) -> str | None:
        """The field error code for a password that breaks the policy, or None."""
        if len(password) < self.min_length:
            return "password_too_short"
        if len(password) > self.max_length:
            return "password_too_long"
        if self.check_common and password.lower() in _common_passwords():
            return "password_too_common"
        return None

    def require(self, password: str, field: str = "password") -> None:
        problem = self.problems(password)
        if problem:
            raise InvalidInput({field: problem})


def require_all(*checks: Callable[[], object]) -> None:
    """Run every check (each raising InvalidInput or not) and raise one InvalidInput naming the
    fields of all that failed, so that a caller learns every problem at once."""
    fields: dict[str, str] = {}
    for check in checks:
        try:
            check()
        except InvalidInput as exc:
            for name, code in exc.fields.items():
                fields.setdefault(name, code)
    if fields:
        raise InvalidInput(fields)


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    """zxcvbn's list of the 30,000 most common passwords (shipped with the package)."""
    try:
        from zxcvbn.frequency_lists import FREQUENCY_LISTS
    except ImportError:  # pragma: no cover - zxcvbn is a dependency
        return frozenset()
    return frozenset(p.lower() for p in FREQUENCY_LISTS.get("passwords", []))


# A stored password hash with this prefix matches no password (no hash format starts with it):
# the account exists but nobody can sign in with a password until its owner sets one.
UNUSABLE_PASSWORD_PREFIX = "!"


def unusable_password_hash() -> str:
    """A stored "hash" no password verifies against (a random tail, so no two are equal).
    The hasher treats it as an unknown format: it spends the time of a check and says no."""
    return f"{UNUSABLE_PASSWORD_PREFIX}{secrets.token_hex(16)}"


def has_usable_password(password_hash: str) -> bool:
    """False for ``unusable_password_hash()`` values: the account has no password yet."""
    return not password_hash.startswith(UNUSABLE_PASSWORD_PREFIX)


def normalize_email(email: str, field: str = "email") -> str:
    """The one normalized form of an address, applied at every entry (sign-up, sign-in on both
    faces, reset, secondary addresses, search, admin look-ups, import): email-validator's
    normalized form (local part NFC, domain as Unicode IDNA, so ``xn--`` and Unicode spellings
    agree), lower-cased. Syntax only, no DNS look-ups. Raises InvalidInput({field: "invalid_email"})."""
    try:
        result = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput({field: "invalid_email"}) from exc
    return result.normalized.lower()


def email_key(text: str) -> str:
    """The form an address is stored and looked up in, for text that may not be an address:
    ``normalize_email`` when it is one, else the text NFC-normalized and lower-cased (so a
    look-up of garbage finds nothing, costs the same and never raises)."""
    try:
        return normalize_email(text)
    except InvalidInput:
        return unicodedata.normalize("NFC", text.strip()).lower()


def address_search_key(text: str) -> str:
    """What an administrator's search text is matched against stored addresses with (a
    substring of the stored, normalized form): a whole address in its one normalized form
    (``normalize_email``); anything else NFC-normalized and lower-cased, with each ``xn--``
    label (punycode, RFC 3492) spelt in Unicode as stored, so a domain pasted in either
    spelling finds the same users. A label that is not valid punycode is kept as typed."""
    try:
        return normalize_email(text)
    except InvalidInput:
        pass
    text = unicodedata.normalize("NFC", text.strip()).lower()

    def unicode_label(match: re.Match[str]) -> str:
        try:
            return match[0].encode("ascii").decode("idna")
        except UnicodeError:
            return match[0]

    return re.sub(r"xn--[a-z0-9-]+", unicode_label, text)


def sign_in_key(identifier: str) -> str:
    """What a sign-in identifier is looked up (and rate limited) by: an address in its one
    normalized form (``email_key``), an account name lower-cased. At most 320 characters."""
    identifier = identifier.strip()
    if "@" in identifier:
        return email_key(identifier)[:320]
    return identifier.lower()[:320]


def is_valid_account(account: str) -> bool:
    return bool(ACCOUNT_RE.match(account))


def require_account(account: str, field: str = "account") -> str:
    if not is_valid_account(account):
        raise InvalidInput({field: "invalid_account"})
    return account


def account_base_from_email(email: str) -> str:
    """ASCII-folded local part usable as an account name, or '' when nothing is left."""
    local = email.partition("@")[0]
    folded = unicodedata.normalize("NFKD", local).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]", "", folded)[:24].strip(".-_")
    return cleaned if len(cleaned) >= 3 else ""


@dataclass(frozen=True, slots=True)
class RedirectTarget:
    """One parsed entry of SPROUTGATE_ALLOWED_REDIRECTS.

    ``path`` is normalized; ``prefix`` entries (written with a trailing ``*``) allow ``path``
    and everything below it by whole segments, the others exactly ``path`` (and ``query``)."""

    scheme: str
    host: str
    port: int
    path: str
    query: str
    prefix: bool

    @property
    def has_path(self) -> bool:
        """False for an entry that allows every path of its origin (``https://app.example*``)."""
        return not (self.prefix and self.path == "/")


@dataclass(frozen=True, slots=True)
class _Url:
    scheme: str
    host: str
    port: int
    path: str
    query: str
    fragment: str

    def serialize(self) -> str:
        default = {"http": 80, "https": 443}[self.scheme]
        netloc = self.host if self.port == default else f"{self.host}:{self.port}"
        if ":" in self.host:  # an IPv6 literal
            netloc = f"[{self.host}]" if self.port == default else f"[{self.host}]:{self.port}"
        url = f"{self.scheme}://{netloc}{self.path}"
        if self.query:
            url += "?" + self.query
        if self.fragment:
            url += "#" + self.fragment
        return url


_ENCODED_SEPARATORS = re.compile(r"%(2f|5c)", re.IGNORECASE)


def _normalize_path(path: str) -> str:
    """RFC 3986 §5.2.4 dot-segment removal, with ``%2e`` read as ``.`` as browsers do (WHATWG
    URL "single-dot/double-dot path segment"); an empty path is ``/``."""
    segments = re.sub("%2e", ".", path, flags=re.IGNORECASE).split("/")
    out: list[str] = []
    for segment in segments[1:]:
        if segment == ".":
            continue
        if segment == "..":
            if out:
                out.pop()
            continue
        out.append(segment)
    last = segments[-1] if len(segments) > 1 else ""
    if last in (".", "..") and (not out or out[-1] != ""):
        out.append("")
    return "/" + "/".join(out)


def _parse_url(url: str) -> _Url | None:
    """An absolute http(s) URL split for comparison, or None when it is not one we would ever
    redirect to: control characters, white space, backslashes, encoded slashes, userinfo
    (``user@host``), a bad port or an unencodable host are all refused."""
    if not url or len(url) > 2048 or any(c.isspace() or ord(c) < 32 or c == "\\" for c in url):
        return None
    if _ENCODED_SEPARATORS.search(url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return None
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return None
    try:
        host = host.encode("idna").decode("ascii").lower() if not host.isascii() else host.lower()
    except UnicodeError:
        return None
    return _Url(
        scheme,
        host,
        port or (443 if scheme == "https" else 80),
        _normalize_path(parts.path),
        parts.query,
        parts.fragment,
    )


def parse_redirect_entries(entries: list[str]) -> tuple[list[RedirectTarget], list[str]]:
    """Parse SPROUTGATE_ALLOWED_REDIRECTS. Returns the usable targets and a warning (English,
    for the operator's log) for each entry that is unusable or allows a whole origin."""
    targets: list[RedirectTarget] = []
    warnings: list[str] = []
    for entry in entries:
        prefix = entry.endswith("*")
        parsed = _parse_url(entry[:-1] if prefix else entry)
        if parsed is None:
            warnings.append(f"SPROUTGATE_ALLOWED_REDIRECTS entry {entry!r} is not an http(s) URL: ignored")
            continue
        target = RedirectTarget(parsed.scheme, parsed.host, parsed.port, parsed.path, parsed.query, prefix)
        if not target.has_path:
            warnings.append(
                f"SPROUTGATE_ALLOWED_REDIRECTS entry {entry!r} has no path: it allows every page of "
                f"{parsed.scheme}://{parsed.host}; name the path apps return to (e.g. /callback*)"
            )
        targets.append(target)
    return targets, warnings


def allowed_redirect(redirect_to: str | None, targets: list[RedirectTarget]) -> str | None:
    """The URL to redirect to, when an allow-list entry permits ``redirect_to``, else None:
    never an open redirect (OWASP Unvalidated Redirects and Forwards).

    Scheme, host and port must equal the entry's exactly; the path is compared after
    normalization, by whole segments for prefix entries (``https://app.example/cb*`` allows
    ``/cb`` and ``/cb/x`` but not ``/cbx``); userinfo and look-alike hosts
    (``https://app.example.evil.example``) never match. The answer is the URL rebuilt from what
    was checked, so the browser goes exactly where the check looked."""
    if not redirect_to or not targets:
        return None
    url = _parse_url(redirect_to)
    if url is None:
        return None
    for t in targets:
        if (url.scheme, url.host, url.port) != (t.scheme, t.host, t.port):
            continue
        if t.prefix:
            base = t.path if t.path.endswith("/") else t.path + "/"
            if url.path == t.path or url.path.startswith(base):
                return url.serialize()
        elif url.path == t.path and url.query == t.query:
            return url.serialize()
    return None


# A client address that signed in successfully this recently is never locked out by failures
# from other addresses (docs/security.md, "Sign-in failures and lockout").
KNOWN_CLIENT_SECONDS = 30 * 24 * 3600


def failure_key(typed_key: str, user_id: str | None, password_hash: str | None) -> str:
    """The key sign-in failures are counted under.

    For an existing account: its id and a digest of its current password hash, so one counter
    covers every spelling of the account (address or account name), and a password change or
    reset starts fresh counters: the new password works at once from any address. For an
    unknown identifier: what was typed (``sign_in_key``), so guessing at accounts that do not
    exist is limited alike and tells nothing."""
    if user_id is None or password_hash is None:
        return typed_key
    generation = hashlib.sha256(password_hash.encode()).hexdigest()[:16]
    return f"user:{user_id}:{generation}"


@dataclass(frozen=True, slots=True)
class NewUser:
    """A user about to be created, and the one set of defaults every way in shares (sign-up,
    the admin API and console, the importer): ``accounts.service.add_user`` builds the row.

    ``account`` None: one is derived from the email address (sign-up without a name).
    ``username`` None: the account name. ``created_at`` None: now (an import keeps the old
    installation's times); ``updated_at`` None: ``created_at``. Every address given is verified
    from ``created_at`` on: a code proved it, an administrator vouched for it, or the old
    installation had."""

    email: str
    password_hash: str
    account: str | None = None
    username: str | None = None
    secondary_emails: tuple[str, ...] = ()
    role: str = "user"
    disabled: bool = False
    level: int = 0
    sprout_coins: int = 0
    phone: str | None = None
    avatar_url: str | None = None
    bio: str | None = None
    locale: str = DEFAULT_LANG  # the language of mail to the user; sign-up: the request's
    created_at: datetime | None = None
    updated_at: datetime | None = None


def secondaries_after_primary_change(
    old_primary: str, secondaries: Sequence[str], new_primary: str, keep: Sequence[str] = ()
) -> list[str]:
    """The secondary addresses a user has once ``new_primary`` replaces ``old_primary``.

    The rule, the same for the admin API, the admin console and the importer: the new address
    stops being a secondary one (it is promoted), and the old primary address is dropped (it no
    longer signs in and is free for anyone to register) unless the change explicitly keeps it,
    by listing it in ``keep`` (the secondary addresses the same request names). The other
    secondary addresses stay. Order is kept; the old address, when kept, comes last."""
    after = [e for e in secondaries if e != new_primary and e != old_primary]
    if old_primary != new_primary and old_primary in keep:
        after.append(old_primary)
    return after
