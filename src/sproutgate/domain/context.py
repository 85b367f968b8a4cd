"""What a service needs to know about the caller, independent of HTTP."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CallerContext:
    ip: str = "0.0.0.0"  # noqa: S104 - a label, not a bind address
    lang: str = "zh-CN"
    user_agent: str | None = None
    # The pages' device cookie as the browser presented it (unverified; web only): which
    # browser signs in, for new-device notices (domain/sessions/devices.py).
    device: str | None = None
