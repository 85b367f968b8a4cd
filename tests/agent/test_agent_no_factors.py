"""The agent's tools cannot read or change second factors (issue 13): they reach users only
through the profiles domain's narrow ``ProfileTools``, and none of them names a factor."""

from __future__ import annotations

from sproutgate.agent.tools import TOOLS, ProfileTools
from sproutgate.domain.profiles.service import ProfileService


def test_the_agent_has_no_tool_for_second_factors():
    names = {tool.name for tool in TOOLS}
    assert names == {"get_my_profile", "update_my_profile", "search_users"}
    words = ("mfa", "totp", "factor", "recovery", "passkey", "otp")
    for tool in TOOLS:
        text = f"{tool.name} {tool.description or ''}".lower()
        assert not any(w in text for w in words), tool.name
    # What the tools are handed has no way to factors either.
    for surface in (ProfileTools, ProfileService):
        members = [m for m in dir(surface) if not m.startswith("_")]
        assert not any(w in m.lower() for m in members for w in words), (surface, members)
