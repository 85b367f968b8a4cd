"""One-time code rules: what a code looks like and what it may be used for."""

from __future__ import annotations

import re
from enum import StrEnum

from sproutgate.domain.errors import InvalidInput

CODE_LENGTH = 6
CODE_RE = re.compile(rf"^[0-9]{{{CODE_LENGTH}}}$")


class CodePurpose(StrEnum):
    """What a mailed code proves; stored with the code, so values never change."""

    SIGNUP = "signup"
    RESET = "reset"
    SECONDARY_EMAIL = "secondary_email"
    PRIMARY_EMAIL = "primary_email"  # a new primary address (AccountService.request_primary_email_change)
    # Written, never checked: a request for an address that gets no real code writes one of
    # these instead, so that it costs what a real one does (no enumeration by time).
    DECOY = "decoy"


def held_by_requester(purpose: CodePurpose) -> bool:
    """Whether codes of ``purpose`` belong to the user who asked for them rather than to the
    address: several users may each hold one for the same address (a secondary address being
    added), and one user's request or wrong guesses never replace or burn another user's code.
    Sign-up and reset codes belong to the address (one at a time)."""
    return purpose in (CodePurpose.SECONDARY_EMAIL, CodePurpose.PRIMARY_EMAIL)


def is_code_shaped(code: str) -> bool:
    """Six ASCII digits (what every mailed code looks like)."""
    return bool(CODE_RE.match(code))


def require_code_shape(code: str, field: str = "code") -> str:
    """``code`` when it is six digits; raises InvalidInput({field: "invalid_code_format"}), a 422
    on every face: a malformed code is bad input, not a wrong guess."""
    if not is_code_shaped(code):
        raise InvalidInput({field: "invalid_code_format"})
    return code
