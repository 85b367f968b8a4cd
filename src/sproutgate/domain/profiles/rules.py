"""Profile field rules, defined once: display name, avatar URL, bio, phone, language.

Each API document gives its own limits for the same stored fields, so a face names the
``ProfileRules`` it follows (``RUNTIME_PROFILE`` for /api/v1, ``SPROUTGATE_PROFILE`` for /api,
the pages and the agent) instead of passing numbers. Wire schemas and forms read their limits
from these objects, so OpenAPI shows what the domain enforces."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sproutgate.domain.errors import InvalidInput
from sproutgate.i18n import LANGS


class _Unset:
    """The type of ``UNSET``: "leave this field as it is" (None means "clear it")."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()

PHONE_MAX_LENGTH = 20
PHONE_RE = re.compile(rf"^[0-9+\- ]{{1,{PHONE_MAX_LENGTH}}}$")
URL_MAX_LENGTH = 2048
DISPLAY_NAME_LOWER_MAX = 64


@dataclass(frozen=True, slots=True)
class ProfileRules:
    """Limits for the editable profile fields (lengths in characters)."""

    username_min: int = 1
    username_max: int = 30
    bio_max: int = 2000
    phone_max: int = PHONE_MAX_LENGTH
    url_max: int = URL_MAX_LENGTH

    def limits(self) -> dict[str, dict[str, int]]:
        """The numbers each field's error message names: field (domain spelling) -> ``min``
        and/or ``max`` characters."""
        return {
            "username": {"min": self.username_min, "max": self.username_max},
            "bio": {"max": self.bio_max},
            "phone": {"max": self.phone_max},
            "avatar_url": {"max": self.url_max},
        }


# runtime-api-v1.md: "username 3-30 chars", "bio max 200 chars".
RUNTIME_PROFILE = ProfileRules(username_min=3, username_max=30, bio_max=200)
# sproutgate-api.md gives no limits: the stored columns' (a Markdown bio up to 2000).
SPROUTGATE_PROFILE = ProfileRules(username_min=1, username_max=30, bio_max=2000)
# runtime-api-v1.md: POST /users/search takes a query of 1-100 characters (the agent's
# search_users tool takes the same).
RUNTIME_SEARCH_QUERY_MAX = 100


@dataclass(slots=True)
class ProfileChanges:
    """Fields to change; ``UNSET`` leaves a field alone, None clears an optional one."""

    username: object = UNSET
    avatar_url: object = UNSET
    bio: object = UNSET
    phone: object = UNSET
    locale: object = UNSET  # the language of mail to the user: one of i18n.LANGS


def locale_of(value: object) -> str | None:
    """The language tag ``value`` names, spelt as ``i18n.LANGS`` spells it (any case: "zh-cn"
    is "zh-CN"), or None when it is not one SproutGate speaks."""
    if not isinstance(value, str):
        return None
    return next((lang for lang in LANGS if lang.lower() == value.strip().lower()), None)


def is_http_url(value: str, max_length: int = URL_MAX_LENGTH) -> bool:
    """An absolute http(s) URL with a host, at most ``max_length`` characters."""
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and len(value) <= max_length


def require_http_url(value: str, field: str) -> str:
    """``value`` when ``is_http_url``; raises InvalidInput({field: "invalid_url"})."""
    if not is_http_url(value):
        raise InvalidInput({field: "invalid_url"})
    return value


def is_phone(value: str) -> bool:
    """Digits, spaces, '+' and '-', 1-20 characters."""
    return bool(PHONE_RE.match(value))


def display_name_lower(name: str) -> str:
    """The search key of a display name: NFKC, case folded, at most 64 characters.

    NFKC can turn one character into 18 (U+FDFA); the column holds 64, and PostgreSQL, unlike
    SQLite, enforces that."""
    return unicodedata.normalize("NFKC", name).casefold()[:DISPLAY_NAME_LOWER_MAX]


def profile_errors(changes: ProfileChanges, rules: ProfileRules) -> dict[str, str]:
    """Field name -> error code for every field of ``changes`` that breaks ``rules`` (all at
    once; empty when everything is fine). Field names are the domain's (snake_case)."""
    errors: dict[str, str] = {}
    if changes.username is not UNSET:
        name = changes.username
        if not isinstance(name, str) or not rules.username_min <= len(name.strip()) <= rules.username_max:
            errors["username"] = "invalid_length"
    avatar = changes.avatar_url
    if avatar not in (UNSET, None, "") and not is_http_url(str(avatar), rules.url_max):
        errors["avatar_url"] = "invalid_url"
    if changes.bio not in (UNSET, None) and len(str(changes.bio)) > rules.bio_max:
        errors["bio"] = "too_long"
    if changes.phone not in (UNSET, None, "") and not is_phone(str(changes.phone)):
        errors["phone"] = "invalid_phone"
    if changes.locale is not UNSET and locale_of(changes.locale) is None:
        errors["locale"] = "invalid_value"
    return errors


def require_valid_profile(changes: ProfileChanges, rules: ProfileRules) -> None:
    """Raises InvalidInput listing every field of ``changes`` that breaks ``rules``."""
    errors = profile_errors(changes, rules)
    if errors:
        raise InvalidInput(errors)


def apply_profile(user: Any, changes: ProfileChanges) -> None:
    """Write the set fields of ``changes`` onto a user row (already validated)."""
    if changes.username is not UNSET:
        user.username = str(changes.username).strip()
        user.username_lower = display_name_lower(user.username)
    if changes.avatar_url is not UNSET:
        user.avatar_url = changes.avatar_url or None
    if changes.bio is not UNSET:
        user.bio = changes.bio
    if changes.phone is not UNSET:
        user.phone = changes.phone or None
    if changes.locale is not UNSET:
        user.locale = locale_of(changes.locale)
