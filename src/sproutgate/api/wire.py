"""What every request body of both API faces has in common."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from sproutgate.domain.accounts.rules import normalize_email
from sproutgate.domain.codes.rules import CODE_RE, is_code_shaped
from sproutgate.domain.errors import InvalidInput
from sproutgate.domain.mfa.rules import code_factor


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple | set):
        return any(_has_nul(v) for v in value)
    return False


class WireIn(BaseModel):
    """Base of request bodies: unknown fields are ignored, and no text may hold a NUL
    character. PostgreSQL cannot store one and SQLite would, so the same input would be a 422
    on one engine and stored on the other; refusing it here answers 422 on both, naming the
    field, before anything is stored."""

    model_config = ConfigDict(extra="ignore")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if _has_nul(value):
            raise ValueError("contains_nul")
        return value


def _six_digits(value: str) -> str:
    if not is_code_shaped(value):
        raise ValueError("invalid_code_format")
    return value


def _email_address(value: str) -> str:
    try:
        normalize_email(value)
    except InvalidInput:
        raise ValueError("invalid_email") from None
    return value


# A mailed one-time code: six digits (domain/codes/rules.py), else 422 invalid_code_format.
SixDigitCode = Annotated[
    str, Field(max_length=16, json_schema_extra={"pattern": CODE_RE.pattern}), AfterValidator(_six_digits)
]
# An email address as domain/accounts/rules.py reads it, else 422 invalid_email. The value is
# passed on as sent: the domain normalizes it.
EmailAddress = Annotated[
    str, Field(max_length=320, json_schema_extra={"format": "email"}), AfterValidator(_email_address)
]


def _mfa_code(value: str) -> str:
    if code_factor(value) is None:
        raise ValueError("invalid_mfa_code_format")
    return value


# A second-factor code: six digits from an authenticator app or a recovery code
# (domain/mfa/rules.py), else 422 invalid_mfa_code_format.
MfaCode = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_mfa_code)]
