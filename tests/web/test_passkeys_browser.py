"""Passkeys end to end in headless Chromium against a real server, with the DevTools protocol's
virtual authenticator (WebAuthn.addVirtualAuthenticator: CTAP2, resident keys, user
verification): adding one on the account page, signing in with it alone, as the second step
after a password with an authenticator app on, a removed passkey refused, an assertion from
another authenticator refused, and a replayed challenge refused.

WebAuthn refuses IP addresses as relying party ids, so this server's public URL (the RP ID's
source) is http://localhost:PORT, and the browser goes there."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pyotp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import Browser, CDPSession, Page, expect
from web_support import ADMIN_TOKEN, PASSWORD, Browsing, Site, outside_viewport, shot, sign_in

from support.fake_openai import FakeOpenAI
from support.servers import ServerProcess, free_port

pytestmark = pytest.mark.browser

TEXT = {
    "en-US": {
        "sign_in": "Sign in with a passkey",
        "instead": "Use a passkey instead",
        "add": "Add a passkey",
        "name": "Name",
        "added": "The passkey was added.",
        "removed": "The passkey was removed",
        "not_recognized": "This passkey is not registered with SproutGate (it may have been removed).",
        "rejected": "The passkey could not be verified, so you are not signed in.",
        "never": "Not used yet",
        "remove": "Remove the passkey {name}",
        "two_step": "Two-step verification",
        "wrong_password": "The password is wrong.",
    },
    "zh-CN": {
        "sign_in": "使用通行密钥登录",
        "instead": "改用通行密钥",
        "add": "添加通行密钥",
        "name": "名称",
        "added": "已添加通行密钥。",
        "removed": "已移除通行密钥",
        "not_recognized": "这个通行密钥没有在 SproutGate 登记(可能已被移除)。",
        "rejected": "通行密钥验证失败,未能登录。",
        "never": "尚未使用",
        "remove": "移除通行密钥 {name}",
        "two_step": "两步验证",
        "wrong_password": "密码错误",
    },
}


class LocalhostSite(Site):
    """The site as the browser must reach it for WebAuthn: by name, not by address."""

    @property
    def url(self) -> str:
        return f"http://localhost:{self.server.port}"


@pytest.fixture(scope="module")
def passkey_site(llm: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    port = free_port()
    env: dict[str, str | None] = {
        "SPROUTGATE_DATA_DIR": str(tmp_path_factory.mktemp("passkey-web-data")),
        "SPROUTGATE_PUBLIC_URL": f"http://localhost:{port}",
        "SPROUTGATE_TRUSTED_PROXIES": "127.0.0.1",
        "SPROUTGATE_ARGON2_TIME_COST": "1",
        "SPROUTGATE_ARGON2_MEMORY_KIB": "1024",
        "SPROUTGATE_ADMIN_TOKEN": ADMIN_TOKEN,
        "SPROUTGATE_MAIL_POLL_SECONDS": "0.2",
        "SPROUTGATE_SMTP_HOST": None,
        "SPROUTGATE_DATABASE_URL": None,
        "SPROUTGATE_REDIS_URL": None,
        "SPROUTGATE_DEV_MAILBOX": None,
        **llm.env(),
    }
    server = ServerProcess(env, port=port, name="sproutgate-passkeys")
    server.start()
    try:
        with httpx.Client(base_url=server.base_url, timeout=20) as http:
            yield LocalhostSite(server=server, http=http, llm=llm, app_origin=f"http://127.0.0.1:{port}")
    finally:
        server.close()


@pytest.fixture
def browsing(browser: Browser, passkey_site: Site) -> Iterator[Browsing]:
    b = Browsing(browser, passkey_site)
    yield b
    b.close()
    assert not b.problems, b.problems


# -- the virtual authenticator ----------------------------------------------------------------
@dataclass
class Authenticator:
    """A CTAP2 platform authenticator with resident keys and user verification, attached to one
    page (tab) through the DevTools protocol."""

    cdp: CDPSession
    id: str

    def credentials(self) -> list[dict[str, Any]]:
        return self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.id})["credentials"]

    def add_credential(self, credential: dict[str, Any]) -> None:
        self.cdp.send("WebAuthn.addCredential", {"authenticatorId": self.id, "credential": credential})


def authenticator(page: Page) -> Authenticator:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    found = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "ctap2Version": "ctap2_1",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return Authenticator(cdp, found["authenticatorId"])


# -- helpers ----------------------------------------------------------------------------------
def new_user(site: Site) -> dict[str, Any]:
    return site.create_user(username=f"Passkey {uuid.uuid4().hex[:4]}")


def api_token(site: Site, user: dict[str, Any]) -> str:
    r = site.http.post("/api/v1/auth/sessions", json={"email": user["email"], "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def my_factors(site: Site, token: str) -> dict[str, Any]:
    r = site.http.get("/api/v1/users/me/mfa", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return r.json()


def mail_kinds(site: Site, email: str) -> list[str]:
    return [m["kind"] for m in site.http.get("/dev/mailbox", params={"to": email}).json()]


def add_passkey(page: Page, lang: str, name: str) -> None:
    text = TEXT[lang]
    page.goto("/account#passkeys")
    page.get_by_label(text["name"], exact=True).fill(name)
    page.get_by_role("button", name=text["add"]).click()
    expect(page).to_have_url(re.compile(r"/account\?notice=passkey_added#passkeys$"))
    expect(page.get_by_role("status")).to_have_text(text["added"])
    expect(page.get_by_test_id("passkeys")).to_contain_text(name)


def sign_out(page: Page) -> None:
    page.locator("form[action='/logout'] button").click()
    expect(page).to_have_url(re.compile(r"/login\?notice=logged_out"))


def passkey_sign_in(page: Page, lang: str) -> None:
    page.goto("/login")
    page.get_by_role("button", name=TEXT[lang]["sign_in"]).click()


def signed_in_as(page: Page, user: dict[str, Any]) -> None:
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.locator(".profile-card")).to_contain_text(f"@{user['account']}")


# -- tests ------------------------------------------------------------------------------------
@pytest.mark.parametrize("lang", ["en-US", "zh-CN"])
def test_add_a_passkey_then_sign_in_with_it_alone(passkey_site, browsing, lang):
    site, text = passkey_site, TEXT[lang]
    user = new_user(site)
    page = browsing.page(lang=lang)
    device = authenticator(page)
    sign_in(page, user["account"])
    add_passkey(page, lang, "My laptop")
    expect(page.locator("[data-passkey-id]")).to_contain_text(text["never"])
    shot(page, "account_passkeys" if lang == "en-US" else "account_passkeys_zh")

    # The authenticator holds one discoverable credential for this site, with user verification.
    held = device.credentials()
    assert len(held) == 1 and held[0]["isResidentCredential"] and held[0]["rpId"] == "localhost"
    token = api_token(site, user)
    passkeys = my_factors(site, token)["passkeys"]
    assert [p["name"] for p in passkeys] == ["My laptop"] and passkeys[0]["last_used_at"] is None
    assert set(passkeys[0]) == {"id", "name", "created_at", "last_used_at"}
    assert "passkey_added" in mail_kinds(site, user["email"])

    # Signed out, the passkey alone signs in: no account name, no password, no code.
    sign_out(page)
    passkey_sign_in(page, lang)
    signed_in_as(page, user)
    used = my_factors(site, token)["passkeys"][0]
    assert used["last_used_at"] is not None
    assert device.credentials()[0]["signCount"] >= 2  # the registration's and the sign-in's
    page.goto("/account#passkeys")
    expect(page.locator("[data-passkey-id]")).not_to_contain_text(text["never"])


def test_a_passkey_alone_does_not_make_the_password_two_step(passkey_site, browsing):
    user = new_user(passkey_site)
    page = browsing.page()
    authenticator(page)
    sign_in(page, user["account"])
    add_passkey(page, "en-US", "Phone")
    sign_out(page)
    sign_in(page, user["account"])  # the password alone, as before the passkey
    signed_in_as(page, user)


def test_a_passkey_is_the_second_step_after_the_password_when_an_app_is_on(passkey_site, browsing):
    site = passkey_site
    user = new_user(site)
    page = browsing.page()
    authenticator(page)
    sign_in(page, user["account"])
    add_passkey(page, "en-US", "Security key")
    # An authenticator app on as well (through the runtime API, codes from pyotp).
    token = api_token(site, user)
    auth = {"Authorization": f"Bearer {token}"}
    secret = site.http.post("/api/v1/users/me/mfa/totp", json={}, headers=auth).json()["secret"]
    r = site.http.post(
        "/api/v1/users/me/mfa/totp/verify", json={"code": pyotp.TOTP(secret).now()}, headers=auth
    )
    assert r.status_code == 200, r.text
    # The API's password step names the passkey among the factors (the pages can perform it).
    r = site.http.post("/api/v1/auth/sessions", json={"email": user["email"], "password": PASSWORD})
    assert r.status_code == 401 and r.json()["factors"] == ["totp", "recovery_code", "passkey"]

    sign_out(page)
    page.goto("/login?next=/account%23passkeys")
    page.get_by_label("Account or email").fill(user["account"])
    page.locator("#f-password").fill(PASSWORD)
    page.locator("form[action='/login'] button[type=submit]").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(TEXT["en-US"]["two_step"])
    shot(page, "login_mfa_passkey")
    page.get_by_role("button", name=TEXT["en-US"]["instead"]).click()
    expect(page).to_have_url(re.compile(r"/account#passkeys$"))
    expect(page.locator(".profile-card")).to_contain_text(f"@{user['account']}")
    # The password step is used up: its token opens nothing more.
    assert my_factors(site, token)["passkeys"][0]["last_used_at"] is not None


@pytest.mark.parametrize("lang", ["en-US", "zh-CN"])
def test_a_removed_passkey_is_refused_and_says_so(passkey_site, browsing, lang):
    site, text = passkey_site, TEXT[lang]
    user = new_user(site)
    page = browsing.page(lang=lang)
    other_device = browsing.page(lang=lang)
    authenticator(page)
    sign_in(page, user["account"])
    sign_in(other_device, user["account"])
    add_passkey(page, lang, "Old phone")

    # Removing asks for the password like adding does (optional within minutes of signing in);
    # a wrong one is refused next to the field and removes nothing. On a phone too.
    page.set_viewport_size({"width": 360, "height": 780})
    page.goto("/account#passkeys")
    assert outside_viewport(page) == []
    password = page.locator("form.passkey-remove input[name=password]")
    password.fill("Wrong#2026pw")
    page.get_by_role("button", name=text["remove"].format(name="Old phone")).click()
    expect(page.locator("form.passkey-remove .field-error")).to_have_text(text["wrong_password"])
    expect(page.get_by_test_id("passkeys")).to_have_count(1)
    assert outside_viewport(page) == []
    password.fill(PASSWORD)
    page.get_by_role("button", name=text["remove"].format(name="Old phone")).click()
    page.set_viewport_size({"width": 1280, "height": 860})
    expect(page).to_have_url(re.compile(r"/account\?notice=passkey_removed#passkeys$"))
    expect(page.get_by_role("status")).to_contain_text(text["removed"])
    expect(page.get_by_test_id("passkeys")).to_have_count(0)
    assert "passkey_removed" in mail_kinds(site, user["email"])
    # Removing a factor ends the owner's other sessions.
    other_device.goto("/account")
    expect(other_device).to_have_url(re.compile(r"/login\?next=%2Faccount"))

    # The authenticator still offers the credential; the server no longer knows it.
    sign_out(page)
    passkey_sign_in(page, lang)
    alert = page.locator("[data-passkey='sign-in'] [role=alert]")
    expect(alert).to_have_text(re.compile(re.escape(text["not_recognized"])))
    expect(page).to_have_url(re.compile(r"/login$"))
    shot(page, "login_passkey_refused" if lang == "en-US" else "login_passkey_refused_zh")
    assert "sg_session" not in {c["name"] for c in page.context.cookies()}


def _der_to_pkcs8_b64(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return base64.b64encode(der).decode()


def test_an_assertion_from_another_authenticator_is_refused(passkey_site, browsing):
    user = new_user(passkey_site)
    page = browsing.page()
    device = authenticator(page)
    sign_in(page, user["account"])
    add_passkey(page, "en-US", "Real key")
    real = device.credentials()[0]

    # Another authenticator, in another browser, claims the same credential id and user handle
    # but holds a key of its own: its signature cannot verify with the registered public key.
    thief = browsing.page()
    fake = authenticator(thief)
    fake.add_credential(
        {
            "credentialId": real["credentialId"],
            "isResidentCredential": True,
            "rpId": "localhost",
            "privateKey": _der_to_pkcs8_b64(ec.generate_private_key(ec.SECP256R1())),
            "userHandle": real["userHandle"],
            "signCount": real["signCount"] + 10,
        }
    )
    passkey_sign_in(thief, "en-US")
    alert = thief.locator("[data-passkey='sign-in'] [role=alert]")
    expect(alert).to_have_text(re.compile(re.escape(TEXT["en-US"]["rejected"])))
    assert "sg_session" not in {c["name"] for c in thief.context.cookies()}
    # Refused for its signature (the counter moved forward, the flags are a passkey's).
    assert "passkey assertion refused: Could not verify authentication signature" in (
        passkey_site.server.log_text()
    )

    # A credential the server never saw, from a third authenticator, is not recognized either.
    stranger = browsing.page()
    other = authenticator(stranger)
    other.add_credential(
        {
            "credentialId": base64.b64encode(uuid.uuid4().bytes).decode(),
            "isResidentCredential": True,
            "rpId": "localhost",
            "privateKey": _der_to_pkcs8_b64(ec.generate_private_key(ec.SECP256R1())),
            "userHandle": real["userHandle"],
            "signCount": 1,
        }
    )
    passkey_sign_in(stranger, "en-US")
    expect(stranger.locator("[data-passkey='sign-in'] [role=alert]")).to_have_text(
        re.compile(re.escape(TEXT["en-US"]["not_recognized"]))
    )


def test_a_replayed_challenge_is_refused(passkey_site, browsing):
    user = new_user(passkey_site)
    page = browsing.page()
    authenticator(page)
    sign_in(page, user["account"])
    add_passkey(page, "en-US", "Laptop")
    sign_out(page)

    sent: list[str] = []
    page.on(
        "request",
        lambda request: (
            sent.append(request.post_data or "") if request.url.endswith("/login/passkey/verify") else None
        ),
    )
    passkey_sign_in(page, "en-US")
    signed_in_as(page, user)
    assert len(sent) == 1
    replay = json.loads(sent[0])
    assert replay["credential"]["response"]["userHandle"]

    # The same assertion again, from the same browser with its cookies and a valid CSRF token:
    # the challenge it answers was used up.
    csrf = page.locator("meta[name=csrf-token]").get_attribute("content")
    r = page.request.post(
        "/login/passkey/verify",
        data=json.dumps(replay),
        headers={"Content-Type": "application/json", "X-CSRF-Token": csrf or "", "Accept-Language": "en"},
    )
    assert r.status == 401, r.text()
    body = r.json()
    assert body["code"] == "passkey_challenge_invalid"
    assert r.headers["content-type"].startswith("application/problem+json")
    assert body["detail"] == "This passkey request expired or was already used. Start again."


# Browsers that predate the Level 3 JSON helpers: passkeys.js encodes and decodes by hand.
WITHOUT_JSON_HELPERS = """
delete PublicKeyCredential.parseCreationOptionsFromJSON;
delete PublicKeyCredential.parseRequestOptionsFromJSON;
delete PublicKeyCredential.prototype.toJSON;
"""


def test_browsers_without_the_json_helpers_register_and_sign_in_too(passkey_site, browsing):
    user = new_user(passkey_site)
    page = browsing.page()
    page.add_init_script(WITHOUT_JSON_HELPERS)
    authenticator(page)
    sign_in(page, user["account"])
    assert page.evaluate("typeof PublicKeyCredential.parseCreationOptionsFromJSON") == "undefined"
    add_passkey(page, "en-US", "Old browser")
    sign_out(page)
    passkey_sign_in(page, "en-US")
    signed_in_as(page, user)
