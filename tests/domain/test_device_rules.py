"""The pure rules of new-device notices (domain/sessions/devices.py)."""

from __future__ import annotations

import pytest

from sproutgate.domain.context import CallerContext
from sproutgate.domain.sessions.devices import DeviceKeys, network_of, notice_due
from sproutgate.domain.sessions.rules import SessionKind

KEYS = DeviceKeys(b"k" * 32)


@pytest.mark.parametrize(
    "ip, network",
    [
        ("192.0.2.77", "192.0.2.0/24"),
        ("10.1.2.3", "10.1.2.0/24"),
        ("2001:db8:abcd:12::1", "2001:db8:abcd::/48"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),  # an IPv4 client on a dual-stack socket
        ("not an address", "not an address"),
        ("", ""),
    ],
)
def test_network_of_is_the_slash_24_or_slash_48(ip, network):
    assert network_of(ip) == network


def test_a_notice_is_due_for_an_unknown_device_of_an_account_with_devices():
    assert notice_due(known=False, first=False)
    assert not notice_due(known=True, first=False)
    assert not notice_due(known=False, first=True)  # the very first sign-in


def test_api_clients_are_their_user_agent_and_network():
    def device(ip: str, agent: str | None) -> str:
        return KEYS.identify(SessionKind.RUNTIME, CallerContext(ip=ip, user_agent=agent)).hash

    assert device("192.0.2.1", "App/1") == device("192.0.2.254", "App/1")
    assert device("192.0.2.1", "App/1") != device("192.0.3.1", "App/1")
    assert device("192.0.2.1", "App/1") != device("192.0.2.1", "App/2")
    assert device("192.0.2.1", None) == device("192.0.2.1", "")
    assert KEYS.identify(SessionKind.GATE, CallerContext(ip="192.0.2.1")).cookie is None
    # Keyed: another key gives other hashes, and nothing of the input shows.
    other = DeviceKeys(b"o" * 32).identify(
        SessionKind.RUNTIME, CallerContext(ip="192.0.2.1", user_agent="App/1")
    )
    assert other.hash != device("192.0.2.1", "App/1") and "App" not in other.hash and len(other.hash) <= 64


def test_the_pages_know_a_browser_by_the_cookie_we_signed():
    first = KEYS.identify(SessionKind.WEB, CallerContext())
    assert first.cookie and KEYS.cookie_id(first.cookie)
    again = KEYS.identify(
        SessionKind.WEB, CallerContext(device=first.cookie, ip="203.0.113.5", user_agent="x")
    )
    assert again == first  # the same browser anywhere; the cookie is handed back for renewal
    device_id = first.cookie.split(".")[0]
    for forged in (
        f"{device_id}.AAAA",
        device_id,
        f"{device_id}..",
        "",
        "a.b.c",
        "x" * 300,
        f".{first.cookie}",
    ):
        assert KEYS.cookie_id(forged) is None, forged
        assert KEYS.identify(SessionKind.WEB, CallerContext(device=forged)).hash != first.hash
    assert DeviceKeys(b"o" * 32).cookie_id(first.cookie) is None


def test_a_notice_quotes_a_user_agent_on_one_printable_line():
    from sproutgate.domain.mail.notices import shown_agent

    assert shown_agent("App/1\r\nWhen: never\x00") == "App/1When: never"
    assert shown_agent("x" * 500) == "x" * 200
    assert shown_agent(None) is None and shown_agent("\n\t") is None
