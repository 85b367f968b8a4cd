"""One-time code rules: what a code looks like and what it may be used for."""

from __future__ import annotations

import re
from enum import StrEnum

CODE_RE = re.compile(r"^[0-9]{6}$")


class CodePurpose(StrEnum):
    """What a mailed code proves; stored with the code, so values never change."""

    SIGNUP = "signup"
    RESET = "reset"
    SECONDARY_EMAIL = "secondary_email"


def is_code_shaped(code: str) -> bool:
    """Six ASCII digits (what every mailed code looks like)."""
    return bool(CODE_RE.match(code))
