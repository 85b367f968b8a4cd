"""Two-step verification on the account page and in the admin console, at the HTTP level
(in-process app, no browser; tests/web/test_account_mfa_browser.py does it in Chromium): enrol
with the QR code or the typed secret, re-authentication, the first code, the recovery codes shown
once with their download, new recovery codes, turning off, the sign-in's recovery-code path, and
the console's summary and reset. Codes computed with pyotp, on both engines."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from urllib.parse import unquote

import pyotp
import pytest
from test_pages_http import PASSWORD, csrf_of, make_user
from test_pages_http import signed_in_client as signed_in_zh

from support.harness import bearer

pytestmark = pytest.mark.both_engines

ADMIN_TOKEN = "mfa-account-admin-token"
SECRET_RE = re.compile(r'data-testid="totp-secret"[^>]*>([A-Z2-7 ]+)<')
CODES_RE = re.compile(r"<li><code>([a-z0-9-]+)</code></li>")


@pytest.fixture
async def h(make_harness, make_settings):
    return await make_harness(make_settings(admin_token=ADMIN_TOKEN))


async def signed_in_client(h, user: dict, lang: str = "en"):
    client = await signed_in_zh(h, user)
    client.headers["Accept-Language"] = lang
    return client


def mid_step(h) -> None:
    """Move the shared clock to the middle of a 30-second step: no boundary while we type."""
    h.clock.advance((15 - h.clock.now().timestamp() % 30) % 30)


def now_code(h, secret: str, ahead: int = 0) -> str:
    return pyotp.TOTP(secret).at(h.clock.now() + timedelta(seconds=30 * ahead))


def field_error(page_html: str, name: str) -> str | None:
    found = re.search(rf'id="f-{name}-error">([^<]+)<', page_html)
    return html.unescape(found.group(1)) if found else None


async def start(client, **form: str):
    r = await client.get("/account")
    assert r.status_code == 200, r.text
    return await client.post("/account/mfa/totp", data={"csrf_token": csrf_of(r.text), **form})


async def enrol_on_the_page(h, client) -> tuple[str, list[str]]:
    """Enrol from the account page; returns the secret and the recovery codes."""
    mid_step(h)
    r = await start(client)
    assert r.status_code == 303 and r.headers["location"] == "/account/mfa/totp", r.text
    page = await client.get("/account/mfa/totp")
    secret = SECRET_RE.search(page.text).group(1).replace(" ", "")  # type: ignore[union-attr]
    r = await client.post(
        "/account/mfa/totp/verify", data={"csrf_token": csrf_of(page.text), "code": now_code(h, secret)}
    )
    assert r.status_code == 200, r.text
    return secret, CODES_RE.findall(r.text)


async def test_enrolling_shows_the_qr_code_and_the_secret_then_the_codes_once(h):
    user = await make_user(h)
    client = await signed_in_client(h, user)
    account = await client.get("/account")
    assert 'data-testid="mfa-status"' in account.text and "Off" in account.text
    mid_step(h)
    r = await start(client)  # signed in just now: no password asked
    assert r.status_code == 303
    page = await client.get("/account/mfa/totp")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert '<figure class="qr" data-testid="totp-qr"' in page.text and "<svg" in page.text
    assert re.search(r"<[^>]+\s(style|on[a-z]+)=", page.text) is None, "inline style or handler"
    grouped = SECRET_RE.search(page.text).group(1)  # type: ignore[union-attr]
    assert re.fullmatch(r"([A-Z2-7]{4} ){7}[A-Z2-7]{4}", grouped), grouped
    secret = grouped.replace(" ", "")
    # A reload shows the same enrolment (no new secret), so does a wrong code.
    assert SECRET_RE.search((await client.get("/account/mfa/totp")).text).group(1) == grouped  # type: ignore[union-attr]
    token = csrf_of(page.text)
    r = await client.post(
        "/account/mfa/totp/verify", data={"csrf_token": token, "code": now_code(h, secret, 5)}
    )
    assert (
        r.status_code == 401 and field_error(r.text, "code") == "The code is wrong or has already been used."
    )
    assert SECRET_RE.search(r.text).group(1) == grouped  # type: ignore[union-attr]
    r = await client.post("/account/mfa/totp/verify", data={"csrf_token": token, "code": "12ab56"})
    assert r.status_code == 422 and field_error(r.text, "code")
    r = await client.post("/account/mfa/totp/verify", data={"csrf_token": token, "code": ""})
    assert r.status_code == 422 and field_error(r.text, "code")

    r = await client.post("/account/mfa/totp/verify", data={"csrf_token": token, "code": now_code(h, secret)})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store", r.text
    codes = CODES_RE.findall(r.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    # The download is the same list as a text file, built in the page: nothing to fetch again.
    href = html.unescape(re.search(r'href="(data:text/plain;charset=utf-8,[^"]+)"', r.text).group(1))  # type: ignore[union-attr]
    text = unquote(href.split(",", 1)[1])
    assert [line for line in text.splitlines() if line in codes] == codes
    assert f"SproutGate recovery codes for {user['account']}" in text
    assert f'download="sproutgate-{user["account"]}-recovery-codes.txt"' in r.text

    account = await client.get("/account")
    assert (
        "10 unused recovery codes left." in account.text
        and 'action="/account/mfa/totp/disable"' in account.text
    )
    # Once on, there is nothing to enrol: the enrolment page and a new start say so.
    r = await client.get("/account/mfa/totp")
    assert r.status_code == 303 and r.headers["location"] == "/account#mfa"
    r = await start(client)
    assert r.status_code == 409 and "already on" in r.text
    kinds = [m["kind"] for m in await h.mailbox(user["email"])]
    assert "mfa_enabled" in kinds
    await client.aclose()


async def test_the_waiting_secret_is_shown_again_only_to_the_browser_that_started(h):
    user = await make_user(h)
    client = await signed_in_client(h, user)
    assert (await start(client)).status_code == 303
    assert "sg_mfa_enrolment" in client.cookies
    # The same session from another browser (a copied session cookie) sees no secret.
    copy = h.new_client(**{"Accept-Language": "en"})
    copy.cookies.set("sg_session", client.cookies["sg_session"])
    assert (await copy.get("/account")).status_code == 200  # the session itself works there
    r = await copy.get("/account/mfa/totp")
    assert r.status_code == 303 and r.headers["location"] == "/account#mfa"
    copy.cookies.set("sg_mfa_enrolment", "forged", path="/account/mfa")
    r = await copy.get("/account/mfa/totp")
    assert r.status_code == 303 and "totp-secret" not in r.text
    page = await client.get("/account/mfa/totp")
    assert page.status_code == 200 and SECRET_RE.search(page.text)
    # Nor does the ticket of another session open it.
    other = await signed_in_client(h, user)
    other.cookies.set("sg_mfa_enrolment", client.cookies["sg_mfa_enrolment"], path="/account/mfa")
    assert (await other.get("/account/mfa/totp")).status_code == 303
    await copy.aclose()
    await other.aclose()
    await client.aclose()


async def test_a_browser_is_never_shown_an_enrolment_someone_else_started(h):
    # Takeover through pending state (issue 11's class): the owner starts enrolling on the
    # page; someone who has the password (or a fresh session) starts another enrolment on the
    # API, which replaces the waiting one. The owner's page showed the *other* secret as the
    # owner's (the ticket named only the session), so the owner scanned and confirmed a secret
    # the other party knows: a second factor that protects nothing against them.
    user = await make_user(h)
    client = await signed_in_client(h, user)
    mid_step(h)
    assert (await start(client)).status_code == 303
    mine = SECRET_RE.search((await client.get("/account/mfa/totp")).text).group(1).replace(" ", "")  # type: ignore[union-attr]
    r = await h.client.post("/api/v1/auth/sessions", json={"email": user["email"], "password": PASSWORD})
    other = r.json()["access_token"]
    r = await h.client.post("/api/v1/users/me/mfa/totp", json={}, headers=bearer(other))
    assert r.status_code == 200, r.text
    theirs = r.json()["secret"]
    assert theirs != mine

    page = await client.get("/account/mfa/totp")
    assert theirs not in page.text.replace(" ", "")
    assert page.status_code == 303 and page.headers["location"] == "/account#mfa"
    # Typing a code of the secret the owner was shown turns nothing on either.
    account = await client.get("/account")
    r = await client.post(
        "/account/mfa/totp/verify", data={"csrf_token": csrf_of(account.text), "code": now_code(h, mine)}
    )
    assert "codes" not in r.headers.get("location", "") and not CODES_RE.findall(r.text)
    status = await h.client.get("/api/v1/users/me/mfa", headers=bearer(other))
    assert status.json()["totp"] is False
    # Starting again here shows this browser's own new secret.
    assert (await start(client)).status_code == 303
    again = SECRET_RE.search((await client.get("/account/mfa/totp")).text).group(1).replace(" ", "")  # type: ignore[union-attr]
    assert again not in (mine, theirs)
    # A ticket of another shape names no enrolment (and is no 500).
    ticket = client.cookies["sg_mfa_enrolment"]
    for forged in ("9" * 40 + "." + ticket.partition(".")[2], "-1." + ticket, "." + ticket, "12x." + ticket):
        client.cookies.set("sg_mfa_enrolment", forged, path="/account/mfa")
        assert (await client.get("/account/mfa/totp")).status_code == 303
    await client.aclose()


async def test_enrolling_long_after_signing_in_needs_the_password_in_chinese(h):
    user = await make_user(h)
    client = await signed_in_client(h, user)
    client.headers["Accept-Language"] = "zh-CN"
    h.clock.advance(h.services.settings.recent_auth_seconds + 5)
    r = await start(client)
    assert (
        r.status_code == 401
        and field_error(r.text, "mfa_password") == "距离登录已经超过一段时间,请输入当前密码。"
    )
    r = await start(client, mfa_password="not-my-password")
    assert r.status_code == 401 and field_error(r.text, "mfa_password") == "密码错误"
    assert (await client.get("/account/mfa/totp")).status_code == 303  # nothing was started
    r = await start(client, mfa_password=PASSWORD)
    assert r.status_code == 303
    page = await client.get("/account/mfa/totp")
    assert "设置验证器应用" in page.text and "无法扫描?手动输入密钥" in page.text
    await client.aclose()


async def test_a_form_without_its_csrf_token_changes_nothing(h):
    user = await make_user(h)
    client = await signed_in_client(h, user)
    r = await client.post("/account/mfa/totp", data={"mfa_password": PASSWORD})
    assert r.status_code == 403
    r = await client.post("/account/mfa/totp", data={"csrf_token": "forged"})
    assert r.status_code == 403
    assert (await client.get("/account/mfa/totp")).status_code == 303
    secret, _ = await enrol_on_the_page(h, client)
    for path, name in (
        ("/account/mfa/totp/disable", "mfa_off_code"),
        ("/account/mfa/recovery-codes", "mfa_codes_code"),
    ):
        r = await client.post(path, data={name: now_code(h, secret, 1)})
        assert r.status_code == 403
    assert "10 unused recovery codes left." in (await client.get("/account")).text
    await client.aclose()


async def test_new_recovery_codes_void_the_old_set_and_turning_off_ends_other_sessions(h):
    user = await make_user(h)
    client = await signed_in_client(h, user)
    secret, old_codes = await enrol_on_the_page(h, client)
    api = (
        await h.client.post(
            "/api/v1/auth/sessions/mfa",
            json={
                "mfa_token": (
                    await h.client.post(
                        "/api/v1/auth/sessions", json={"email": user["email"], "password": PASSWORD}
                    )
                ).json()["mfa_token"],
                "code": now_code(h, secret, 1),
            },
        )
    ).json()["access_token"]
    token = csrf_of((await client.get("/account")).text)

    r = await client.post(
        "/account/mfa/recovery-codes", data={"csrf_token": token, "mfa_codes_code": "nonsense!"}
    )
    assert r.status_code == 422 and field_error(r.text, "mfa_codes_code")
    r = await client.post("/account/mfa/recovery-codes", data={"csrf_token": token, "mfa_codes_code": ""})
    assert r.status_code == 422 and field_error(r.text, "mfa_codes_code")
    r = await client.post(
        "/account/mfa/recovery-codes", data={"csrf_token": token, "mfa_codes_code": now_code(h, secret, 1)}
    )
    assert r.status_code == 401 and field_error(r.text, "mfa_codes_code"), "that step was used to sign in"
    r = await client.post(
        "/account/mfa/recovery-codes", data={"csrf_token": token, "mfa_codes_code": old_codes[0]}
    )
    assert r.status_code == 200 and "Your new recovery codes" in r.text
    new_codes = CODES_RE.findall(r.text)
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    assert "10 unused recovery codes left." in (await client.get("/account")).text

    r = await client.post(
        "/account/mfa/totp/disable", data={"csrf_token": token, "mfa_off_code": old_codes[1]}
    )
    assert (
        r.status_code == 401
        and field_error(r.text, "mfa_off_code") == "The code is wrong or has already been used."
    )
    assert (await h.client.get("/api/v1/users/me", headers=bearer(api))).status_code == 200
    r = await client.post(
        "/account/mfa/totp/disable", data={"csrf_token": token, "mfa_off_code": new_codes[0]}
    )
    assert r.status_code == 303 and r.headers["location"] == "/account?notice=mfa_disabled#mfa"
    account = await client.get("/account?notice=mfa_disabled")
    assert account.status_code == 200 and "The authenticator app is off" in account.text
    assert 'action="/account/mfa/totp"' in account.text
    assert (await h.client.get("/api/v1/users/me", headers=bearer(api))).status_code == 401
    # The password alone signs in again.
    r = await h.client.post("/api/v1/auth/sessions", json={"email": user["email"], "password": PASSWORD})
    assert r.status_code == 200, r.text
    kinds = [m["kind"] for m in await h.mailbox(user["email"])]
    assert {"mfa_recovery_regenerated", "mfa_disabled"} <= set(kinds)
    await client.aclose()


async def test_the_sign_in_offers_a_recovery_code_path_of_its_own(h):
    user = await make_user(h)
    client = await signed_in_client(h, user)
    _, codes = await enrol_on_the_page(h, client)
    await client.aclose()
    client = h.new_client(**{"Accept-Language": "en"})
    r = await client.get("/login")
    r = await client.post(
        "/login", data={"csrf_token": csrf_of(r.text), "identifier": user["account"], "password": PASSWORD}
    )
    assert r.status_code == 200 and 'data-testid="recovery-path"' in r.text
    assert "No phone at hand? Use a recovery code" in r.text and 'name="recovery_code"' in r.text
    assert re.search(r'data-testid="recovery-path"\s*>', r.text), "folded until asked for"
    form = {
        "csrf_token": csrf_of(r.text),
        "mfa_token": re.search(r'name="mfa_token" value="([^"]+)"', r.text).group(1),
    }  # type: ignore[union-attr]
    r = await client.post("/login/mfa", data={**form, "recovery_code": "aaaa-bbbb-cccc"})
    assert (
        r.status_code == 401
        and field_error(r.text, "recovery_code") == "The code is wrong or has already been used."
    )
    assert re.search(r'data-testid="recovery-path"\s+open>', r.text), "unfolded where the error is"
    r = await client.post("/login/mfa", data={**form, "recovery_code": ""})
    assert r.status_code == 422 and field_error(r.text, "recovery_code")
    r = await client.post("/login/mfa", data={**form, "recovery_code": codes[3]})
    assert r.status_code == 303 and r.headers["location"] == "/account"
    assert "9 unused recovery codes left." in (await client.get("/account")).text
    await client.aclose()


async def test_the_console_shows_second_factors_and_resets_them_audited(h):
    user = await make_user(h)
    plain = await make_user(h)
    client = await signed_in_client(h, user)
    secret, _ = await enrol_on_the_page(h, client)
    console = h.new_client(**{"Accept-Language": "en"})
    r = await console.get("/admin")
    r = await console.post("/admin/login", data={"csrf_token": csrf_of(r.text), "token": ADMIN_TOKEN})
    assert r.status_code == 303
    listing = (await console.get("/admin", params={"q": user["account"]})).text
    assert 'data-mfa="totp"' in listing and ">Two-step<" in listing
    listing = (await console.get("/admin", params={"q": plain["account"]})).text
    assert 'data-mfa="none"' in listing and 'data-mfa="totp"' not in listing
    edit = await console.get(f"/admin/users/{plain['account']}")
    assert "This user has no second factor." in edit.text and "/reset-mfa" not in edit.text

    edit = await console.get(f"/admin/users/{user['account']}")
    assert f'action="/admin/users/{user["account"]}/reset-mfa"' in edit.text
    r = await console.post(f"/admin/users/{user['account']}/reset-mfa", data={})
    assert r.status_code == 403  # no CSRF token
    r = await console.post("/admin/users/nobody-here/reset-mfa", data={"csrf_token": csrf_of(edit.text)})
    assert r.status_code == 404
    r = await console.post(
        f"/admin/users/{user['account']}/reset-mfa", data={"csrf_token": csrf_of(edit.text)}
    )
    assert (
        r.status_code == 303
        and r.headers["location"] == f"/admin/users/{user['account']}?notice=mfa_reset#mfa"
    )
    edit = await console.get(r.headers["location"])
    assert (
        "The user&#39;s second factors were reset." in edit.text or "second factors were reset" in edit.text
    )
    assert "This user has no second factor." in edit.text
    # Through the admin API's rule: summary off, their sessions ended, audited, mailed.
    r = await h.client.get(
        "/api/admin/users", params={"q": user["account"]}, headers={"X-Admin-Token": ADMIN_TOKEN}
    )
    assert r.json()["users"][0]["mfa"] == {"totp": False, "passkeys": 0}
    assert (await client.get("/account")).status_code != 200
    audit = (await console.get("/admin/audit")).text
    assert "second factors reset" in audit and "the admin token" in audit
    assert "mfa_reset" in [m["kind"] for m in await h.mailbox(user["email"])]
    r = await h.client.post("/api/v1/auth/sessions", json={"email": user["email"], "password": PASSWORD})
    assert r.status_code == 200 and now_code(h, secret)  # the password alone again
    await console.aclose()
    await client.aclose()
