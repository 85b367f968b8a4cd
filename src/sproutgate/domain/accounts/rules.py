"""Account rules shared by every face: email addresses, passwords, account names, redirects."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

from sproutgate.domain.errors import InvalidInput

ACCOUNT_RE = re.compile(r"^[A-Za-z0-9_.\-]{3,32}$")


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 6
    max_length: int = 128
    check_common: bool = True

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


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    """zxcvbn's list of the 30,000 most common passwords (shipped with the package)."""
    try:
        from zxcvbn.frequency_lists import FREQUENCY_LISTS
    except ImportError:  # pragma: no cover - zxcvbn is a dependency
        return frozenset()
    return frozenset(p.lower() for p in FREQUENCY_LISTS.get("passwords", []))


def normalize_email(email: str, field: str = "email") -> str:
    """Lower-cased, syntax-checked address (no DNS lookups)."""
    try:
        result = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput({field: "invalid_email"}) from exc
    return result.normalized.lower()


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


def allowed_redirect(redirect_to: str | None, allowed: list[str]) -> str | None:
    """``redirect_to`` when an entry of ``allowed`` (SPROUTGATE_ALLOWED_REDIRECTS) permits it,
    else None: never an open redirect. An entry ending in ``*`` allows any continuation."""
    if not redirect_to:
        return None
    for entry in allowed:
        if redirect_to == entry or (entry.endswith("*") and redirect_to.startswith(entry[:-1])):
            return redirect_to
    return None
