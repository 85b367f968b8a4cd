"""Which client signs in: the rule behind new-device notices (docs/security.md, notices).

- The pages remember a browser with a device cookie (``sg_device``: HttpOnly, SameSite=Lax,
  Secure over HTTPS, 400 days, renewed at each sign-in). Its value is a random id and a MAC
  over it (``<id>.<mac>``), so a cookie we did not issue is a new device.
- An API client has no cookie: it is its user agent and its network (the /24 of an IPv4
  address, the /48 of an IPv6 one), so a phone moving between addresses of one provider's
  block stays the same client while a new app or network does not.
- Only keyed hashes (HMAC-SHA-256 with ``data/keys/devices.key``) of these identifiers are
  stored (``sign_in_devices``): the table alone tells neither the cookie nor the address.

A sign-in from a device not seen for the account mails a notice, except when the account has
no device at all yet: its very first sign-in after sign-up (or after this was introduced, or
after every device was purged for disuse) is not news to its owner. Separate from the lockout
rule's ``sign_in_clients`` (client addresses, 30 days), on purpose: the two answer different
questions and expire differently.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass

from sproutgate.domain.context import CallerContext
from sproutgate.domain.sessions.rules import SessionKind

DEVICE_COOKIE = "sg_device"
# Browsers cap a cookie's lifetime at 400 days (RFC 6265bis §5.5); it is renewed at each sign-in.
DEVICE_COOKIE_SECONDS = 400 * 24 * 3600
# Devices unused this long are forgotten by the purge (the next sign-in from them is news again).
DEVICE_FORGET_SECONDS = 400 * 24 * 3600
USER_AGENT_CHARS = 512  # what is hashed of a user agent (as much as a session row keeps)


def network_of(ip: str) -> str:
    """The network an address belongs to for device recognition: ``a.b.c.0/24`` for IPv4,
    the /48 for IPv6 (RFC 6177's end-site prefix), the text itself when it is no address."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def notice_due(known: bool, first: bool) -> bool:
    """Whether a sign-in mails a new-device notice: the device was not seen for the account
    (``known`` False), and the account had some device before (``first`` False)."""
    return not known and not first


@dataclass(frozen=True, slots=True)
class Device:
    """A signing-in client as stored (``hash``) and, for the pages, the cookie to (re)set."""

    hash: str
    cookie: str | None = None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class DeviceKeys:
    """Issues and checks the pages' device cookies and hashes device identifiers, with one
    secret (32 bytes, ``data/keys/devices.key``, the same on every instance)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, *parts: str) -> str:
        return _b64(hmac.new(self._key, "\x1f".join(parts).encode(), hashlib.sha256).digest())

    def cookie_id(self, value: str | None) -> str | None:
        """The id inside a device cookie we issued; None for a missing or forged one."""
        if not value or value.count(".") != 1 or len(value) > 200:
            return None
        device_id, mac = value.split(".")
        # As bytes: compare_digest refuses str with non-ASCII characters (a cookie's choice).
        presented = mac.encode("utf-8", "surrogatepass")
        if not device_id or not hmac.compare_digest(self._mac("cookie", device_id).encode(), presented):
            return None
        return device_id

    def new_cookie(self) -> tuple[str, str]:
        """A new browser's device cookie value and its id."""
        device_id = secrets.token_urlsafe(18)
        return f"{device_id}.{self._mac('cookie', device_id)}", device_id

    def identify(self, kind: SessionKind, ctx: CallerContext) -> Device:
        """The device of a sign-in opening a session of ``kind``: the pages' browser by its
        cookie (a new one when it brought none we issued; the cookie is always handed back so
        the face renews it), any API client by user agent and network."""
        if kind is SessionKind.WEB:
            device_id = self.cookie_id(ctx.device)
            cookie = ctx.device
            if device_id is None:
                cookie, device_id = self.new_cookie()
            return Device(self._mac("web", device_id), cookie)
        agent = (ctx.user_agent or "")[:USER_AGENT_CHARS]
        return Device(self._mac("api", agent, network_of(ctx.ip)))
