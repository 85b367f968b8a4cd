"""Admin rules: what counts as a change of a user, and the one audit record of it.

The admin API, the admin console and the CLI all change users through ``AdminService``, which
compares what was asked for with what is stored and audits only what changed, the same way
whichever face asked (docs/architecture.md, "Audit")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Admin-settable fields, in the order an audit record lists them (domain names, not a face's).
FIELDS = (
    "account",
    "email",
    "password",
    "username",
    "level",
    "sprout_coins",
    "secondary_emails",
    "phone",
    "avatar_url",
    "bio",
    "disabled",
    "role",
    "locale",
    "reset_mfa",
)
# Fields whose new value the audit trail keeps. Never the password (nor its hash); the
# profile texts are the user's own and stay out too.
AUDITED_VALUES = (
    "email",
    "level",
    "sprout_coins",
    "secondary_emails",
    "disabled",
    "role",
    "locale",
    "reset_mfa",
)


def changed_fields(wanted: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``wanted`` (field -> requested value, normalised) that differ from
    ``current`` (field -> stored value). A password is always a change (it is never compared:
    that would cost a hash); secondary addresses are compared as a set."""
    changed: dict[str, Any] = {}
    for name, value in wanted.items():
        if name == "password":
            changed[name] = value
        elif name == "secondary_emails":
            if set(value) != set(current.get(name) or ()):
                changed[name] = value
        elif value != current.get(name):
            changed[name] = value
    return changed


def audit_details(changed: Mapping[str, Any]) -> dict[str, Any]:
    """The audit record's details for an admin change of a user: ``fields`` that changed, in
    ``FIELDS`` order, and ``values``, the new values of those in ``AUDITED_VALUES`` (left out
    when there are none). Never a secret: a new password shows as the field name only."""
    fields = [name for name in FIELDS if name in changed]
    values = {name: _plain(changed[name]) for name in AUDITED_VALUES if name in changed}
    return {"fields": fields, "values": values} if values else {"fields": fields}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple | set | frozenset) else value
