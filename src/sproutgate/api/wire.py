"""What every request body of both API faces has in common."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


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
