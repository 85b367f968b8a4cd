"""In headless Chromium against a real server whose recent-sign-in window is two seconds
(``SPROUTGATE_RECENT_AUTH_SECONDS=2``): an app asking for lasting access (``offline_access``)
from a sign-in older than that gets the sign-in form first, in the person's language, and only
then a code; single sign-on without ``offline_access`` goes straight through. The rule:
docs/security.md, "Lasting access asks for a recent sign-in"."""

from __future__ import annotations

import base64
import hashlib
import http.server
import re
import secrets
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, expect
from web_support import ADMIN_TOKEN, PASSWORD, Browsing, Site, sign_in

from support.fake_openai import FakeOpenAI
from support.servers import ServerProcess, free_port

pytestmark = pytest.mark.browser

RECENT = 2


@pytest.fixture(scope="module")
def brief_site(llm: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    port = free_port()
    env: dict[str, str | None] = {
        "SPROUTGATE_DATA_DIR": str(tmp_path_factory.mktemp("lasting-web-data")),
        "SPROUTGATE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SPROUTGATE_TRUSTED_PROXIES": "127.0.0.1",
        "SPROUTGATE_ARGON2_TIME_COST": "1",
        "SPROUTGATE_ARGON2_MEMORY_KIB": "1024",
        "SPROUTGATE_ADMIN_TOKEN": ADMIN_TOKEN,
        "SPROUTGATE_RECENT_AUTH_SECONDS": str(RECENT),
        "SPROUTGATE_SMTP_HOST": None,
        "SPROUTGATE_DATABASE_URL": None,
        "SPROUTGATE_REDIS_URL": None,
        "SPROUTGATE_DEV_MAILBOX": None,
        **llm.env(),
    }
    server = ServerProcess(env, port=port, name="sproutgate-lasting")
    server.start()
    try:
        with httpx.Client(base_url=server.base_url, timeout=20) as http:
            yield Site(server=server, http=http, llm=llm, app_origin=f"http://localhost:{port}")
    finally:
        server.close()


@pytest.fixture
def browsing(browser: Browser, brief_site: Site) -> Iterator[Browsing]:
    b = Browsing(browser, brief_site)
    yield b
    b.close()
    assert not b.problems, b.problems


class _App(http.server.BaseHTTPRequestHandler):
    """The app's callback: answers every redirect back to it (a page route does not see the
    target of a redirect, so a real listener stands in for the app)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"back at the app")

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def app() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _App)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/callback"
    finally:
        server.shutdown()
        server.server_close()


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@pytest.mark.parametrize(("lang", "label"), [("en-US", "Account or email"), ("zh-CN", "账号或邮箱")])
def test_lasting_access_from_an_old_sign_in_shows_the_sign_in_form_first(
    brief_site, browsing, app, lang, label
):
    callback = app
    body = {
        "name": f"Pocket Notes {secrets.token_hex(2)}",
        "redirectUris": [callback],
        "scopes": ["openid", "profile", "offline_access"],
        "grantTypes": ["authorization_code", "refresh_token"],
        "firstParty": True,
    }
    r = brief_site.http.post("/api/admin/clients", json=body, headers={"X-Admin-Token": ADMIN_TOKEN})
    assert r.status_code == 201, r.text
    client_id, secret = r.json()["client"]["clientId"], r.json()["clientSecret"]
    user = brief_site.create_user()
    page = browsing.page(lang=lang)
    sign_in(page, user["account"])
    expect(page).to_have_url(re.compile(r"/account$"))
    time.sleep(RECENT + 1.1)  # the sign-in is no longer recent

    def request(scope: str, challenge: str) -> str:
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": callback,
            "scope": scope,
            "state": "s-lasting",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return "/oauth2/authorize?" + urlencode(query)

    # Single sign-on without lasting access: straight back to the app.
    page.goto(request("openid profile", _pkce()[1]))
    expect(page).to_have_url(re.compile(re.escape(callback) + r"\?code="))
    # Lasting access: the sign-in form, though signed in.
    verifier, challenge = _pkce()
    page.goto(request("openid profile offline_access", challenge))
    expect(page).to_have_url(re.compile(r"/login\?.*reauth=1"))
    expect(page.locator("#f-password")).to_be_visible()
    page.get_by_label(label).fill(user["account"])
    page.locator("#f-password").fill(PASSWORD)
    page.locator("form[action='/login'] button[type=submit]").click()
    expect(page).to_have_url(re.compile(re.escape(callback) + r"\?code=.+&state=s-lasting"))
    code = parse_qs(urlsplit(page.url).query)["code"][0]
    r = brief_site.http.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": callback,
            "code_verifier": verifier,
        },
        auth=(client_id, secret),
    )
    assert r.status_code == 200, r.text
    assert r.json()["refresh_token"] and "offline_access" in r.json()["scope"].split()
