"""Issue 14, security notices: every event mails the user, in the language stored for them
(whoever caused it and whatever their request said), through a real SMTP server; each notice
says what happened, when, from where and what to do. Plus: the stored language itself (sign-up,
both APIs' profile updates), the operator's template directory and product name, and the
new-device rule for API clients (user agent + network) and the pages (device cookie)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import jwt
import pyotp
import pytest

from sproutgate.domain.admin.service import UserFields
from sproutgate.domain.sessions.service import SessionNotFound
from support.harness import AppHarness, bearer
from support.servers import ReceivedMessage, SmtpServer

pytestmark = pytest.mark.both_engines

PASSWORD = "Owner#Garden2026"
NEW_PASSWORD = "Fresh#Meadow2026"
OTHER = {"en": "zh-CN", "zh-CN": "en"}
CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")
SUBJECTS = {
    "new_sign_in": {
        "en": "[SproutGate] New sign-in to your account",
        "zh-CN": "【SproutGate】你的账号在新设备上登录",
    },
    "password_changed": {
        "en": "[SproutGate] Your password was changed",
        "zh-CN": "【SproutGate】你的密码已修改",
    },
    "secondary_added": {
        "en": "[SproutGate] A secondary address was added to your account",
        "zh-CN": "【SproutGate】你的账号添加了辅助邮箱",
    },
    "secondary_removed": {
        "en": "[SproutGate] A secondary address was removed from your account",
        "zh-CN": "【SproutGate】你的账号移除了辅助邮箱",
    },
    "mfa_enabled": {
        "en": "[SproutGate] An authenticator app was turned on",
        "zh-CN": "【SproutGate】已开启验证器应用",
    },
    "primary_changed": {
        "en": "[SproutGate] The primary address of your account changed",
        "zh-CN": "【SproutGate】你的账号主邮箱已更改",
    },
    "session_revoked": {
        "en": "[SproutGate] An administrator signed out one of your sessions",
        "zh-CN": "【SproutGate】管理员结束了你的一个会话",
    },
    "account_disabled": {
        "en": "[SproutGate] Your account was disabled",
        "zh-CN": "【SproutGate】你的账号已被停用",
    },
}
WHEN = {"en": "When: ", "zh-CN": "时间:"}
BY_ADMIN = {"en": "By: an administrator", "zh-CN": "操作者:管理员"}
IF_NOT_YOU = {"en": "If this was not you", "zh-CN": "如果不是你本人"}


def smtp_settings(smtp: SmtpServer, **more: Any) -> dict[str, Any]:
    return {
        "smtp_host": smtp.host,
        "smtp_port": smtp.port,
        "smtp_security": "none",
        "limit_code_mail_per_address": "100/minute",
        "admin_token": "notices-admin-token",
        **more,
    }


ADMIN = {"X-Admin-Token": "notices-admin-token"}


async def arrived(smtp: SmtpServer, to: str, subject: str) -> ReceivedMessage:
    return await asyncio.to_thread(smtp.wait_for, lambda m: m.sent_to(to) and m.subject == subject, 15)


async def code_from(smtp: SmtpServer, to: str) -> str:
    message = await asyncio.to_thread(smtp.wait_for, lambda m: m.sent_to(to) and CODE.search(m.subject), 15)
    smtp.clear()
    found = CODE.search(message.subject)
    assert found
    return found.group(1)


async def sign_up_v1(h: AppHarness, smtp: SmtpServer, email: str, lang: str) -> dict[str, Any]:
    """Sign up on the runtime API with ``Accept-Language: lang``; the session body."""
    r = await h.client.post(
        "/api/v1/auth/verifications",
        json={"email": email, "password": PASSWORD, "username": "notice"},
        headers={"Accept-Language": lang},
    )
    assert r.status_code == 202, r.text
    code = await code_from(smtp, email)
    r = await h.client.post("/api/v1/auth/verifications/verify", json={"email": email, "token": code})
    assert r.status_code == 200, r.text
    return r.json()


def assert_notice(message: ReceivedMessage, lang: str, *, where: tuple[str, str] | None) -> None:
    """What every notice says: when, from where (or that an administrator did it), what to do."""
    text = message.text or ""
    assert WHEN[lang] in text and "UTC" in text, text
    if where is None:
        assert BY_ADMIN[lang] in text, text
    else:
        ip, agent = where
        assert ip in text and agent in text, text
    assert IF_NOT_YOU[lang] in text or "管理员" in text or "administrator" in text, text


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
async def test_every_notice_arrives_over_smtp_in_the_users_language(make_harness, make_settings, lang):
    with SmtpServer() as smtp:
        h = await make_harness(make_settings(**smtp_settings(smtp)))
        other = OTHER[lang]  # every request below asks for the other language: mail ignores it
        email = f"owner-{lang.lower()}@example.com"
        first = await sign_up_v1(h, smtp, email, lang)
        token = first["access_token"]
        me = (await h.client.get("/api/auth/me", headers=bearer(token))).json()["user"]
        assert me["locale"] == lang
        account = me["account"]
        phone = {"User-Agent": "NoticePhone/2.0", "Accept-Language": other}

        # A sign-in from a client this account never used.
        async with h.new_client(ip="198.51.100.7", **phone) as c:
            r = await c.post("/api/v1/auth/sessions", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        message = await arrived(smtp, email, SUBJECTS["new_sign_in"][lang])
        assert_notice(message, lang, where=("198.51.100.7", "NoticePhone/2.0"))
        assert message.from_ == "SproutGate <no-reply@localhost>"

        # The password changes (the gate face, with the current password).
        desk = {"User-Agent": "NoticeDesk/1.0", "Accept-Language": other}
        async with h.new_client(ip="203.0.113.9", **desk) as c:
            r = await c.put(
                "/api/auth/profile",
                json={"password": NEW_PASSWORD, "currentPassword": PASSWORD},
                headers=bearer(token),
            )
            assert r.status_code == 200, r.text
            message = await arrived(smtp, email, SUBJECTS["password_changed"][lang])
            assert_notice(message, lang, where=("203.0.113.9", "NoticeDesk/1.0"))

            # An address is added, then removed. Its code is in the user's language too.
            extra = f"extra-{lang.lower()}@example.org"
            r = await c.post(
                "/api/auth/secondary-email/request",
                json={"email": extra, "currentPassword": NEW_PASSWORD},
                headers=bearer(token),
            )
            assert r.status_code == 200, r.text
            code_mail = await asyncio.to_thread(smtp.wait_for, lambda m: m.sent_to(extra), 15)
            assert ("code" in code_mail.subject) is (lang == "en")
            code = CODE.search(code_mail.subject).group(1)  # type: ignore[union-attr]
            r = await c.post(
                "/api/auth/secondary-email/verify", json={"email": extra, "code": code}, headers=bearer(token)
            )
            assert r.status_code == 200, r.text
            message = await arrived(smtp, email, SUBJECTS["secondary_added"][lang])
            assert_notice(message, lang, where=("203.0.113.9", "NoticeDesk/1.0"))
            assert extra in (message.text or "")
            r = await c.post("/api/auth/secondary-email/remove", json={"email": extra}, headers=bearer(token))
            assert r.status_code == 200, r.text
            message = await arrived(smtp, email, SUBJECTS["secondary_removed"][lang])
            assert_notice(message, lang, where=("203.0.113.9", "NoticeDesk/1.0"))

            # A factor changes: an authenticator app is turned on (domain/mfa, same machinery).
            r = await c.post(
                "/api/v1/users/me/mfa/totp", json={"password": NEW_PASSWORD}, headers=bearer(token)
            )
            assert r.status_code == 200, r.text
            secret = r.json()["secret"]
            h.clock.advance((15 - h.clock.now().timestamp() % 30) % 30)
            r = await c.post(
                "/api/v1/users/me/mfa/totp/verify",
                json={"code": pyotp.TOTP(secret).at(h.clock.now())},
                headers=bearer(token),
            )
            assert r.status_code == 200, r.text
            message = await arrived(smtp, email, SUBJECTS["mfa_enabled"][lang])
            assert_notice(message, lang, where=("203.0.113.9", "NoticeDesk/1.0"))

        # An administrator makes another address primary: both addresses are told.
        new_email = f"moved-{lang.lower()}@example.net"
        r = await h.client.put(
            f"/api/admin/users/{account}",
            json={"email": new_email},
            headers={**ADMIN, "Accept-Language": other},
        )
        assert r.status_code == 200, r.text
        for to in (new_email, email):
            message = await arrived(smtp, to, SUBJECTS["primary_changed"][lang])
            assert_notice(message, lang, where=None)
            assert new_email in (message.text or "") and email in (message.text or "")

        # An administrator ends a session: the notice describes which one.
        sid = jwt.decode(token, options={"verify_signature": False})["sid"]
        # (the console's "end" button: AdminService.end_user_session, audited)
        await h.services.admin.end_user_session(account, sid, actor="test")
        with pytest.raises(SessionNotFound):  # once: no second end, no second mail
            await h.services.admin.end_user_session(account, sid, actor="test")
        message = await arrived(smtp, new_email, SUBJECTS["session_revoked"][lang])
        assert_notice(message, lang, where=None)
        r = await h.client.get("/api/v1/users/me", headers=bearer(token))
        assert r.status_code == 401

        # The account is disabled.
        r = await h.client.put(
            f"/api/admin/users/{account}",
            json={"disabled": True},
            headers={**ADMIN, "Accept-Language": other},
        )
        assert r.status_code == 200, r.text
        message = await arrived(smtp, new_email, SUBJECTS["account_disabled"][lang])
        assert_notice(message, lang, where=None)


async def test_an_administrators_password_change_is_mailed_in_the_users_language(make_harness, make_settings):
    with SmtpServer() as smtp:
        h = await make_harness(make_settings(**smtp_settings(smtp)))
        await sign_up_v1(h, smtp, "admin-changed@example.com", "en")
        account = "admin-changed"
        r = await h.client.put(
            f"/api/admin/users/{account}",
            json={"password": NEW_PASSWORD, "secondaryEmails": ["second@example.org"]},
            headers={**ADMIN, "Accept-Language": "zh-CN"},
        )
        assert r.status_code == 200, r.text
        message = await arrived(smtp, "admin-changed@example.com", SUBJECTS["password_changed"]["en"])
        assert_notice(message, "en", where=None)
        assert "An administrator just changed the password" in (message.text or "")
        message = await arrived(smtp, "admin-changed@example.com", SUBJECTS["secondary_added"]["en"])
        assert "second@example.org" in (message.text or "")


# -- the stored language ----------------------------------------------------------------------
async def test_locale_is_set_at_sign_up_and_changed_through_both_apis(make_harness, make_settings):
    h = await make_harness(make_settings(limit_code_mail_per_address="100/minute"))
    r = await h.client.post(
        "/api/v1/auth/verifications",
        json={"email": "lingo@example.com", "password": PASSWORD, "username": "lingo"},
        headers={"Accept-Language": "en-GB,en;q=0.9"},
    )
    assert r.status_code == 202
    r = await h.client.post(
        "/api/v1/auth/verifications/verify",
        json={"email": "lingo@example.com", "token": await h.last_code("lingo@example.com")},
    )
    session = r.json()
    auth = bearer(session["access_token"])
    assert (await h.client.get("/api/auth/me", headers=auth)).json()["user"]["locale"] == "en"

    # Runtime API: an optional field of PATCH /users/me; the answer stays the documented profile.
    r = await h.client.patch("/api/v1/users/me", json={"locale": "zh-cn"}, headers=auth)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"id", "username", "avatar_url", "bio"}
    assert (await h.client.get("/api/auth/me", headers=auth)).json()["user"]["locale"] == "zh-CN"
    for bad in ("fr", "", None, "zh-CN-x"):
        r = await h.client.patch(
            "/api/v1/users/me", json={"locale": bad}, headers={**auth, "Accept-Language": "en"}
        )
        assert r.status_code == 422, (bad, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in r.json()["errors"]] == ["locale"]
    r = await h.client.patch("/api/v1/users/me", json={"locale": 7}, headers=auth)
    assert r.status_code == 422

    # SproutGate API: PUT /api/auth/profile, answered in the user object.
    r = await h.client.put("/api/auth/profile", json={"locale": "en"}, headers=auth)
    assert r.status_code == 200 and r.json()["user"]["locale"] == "en", r.text
    r = await h.client.put(
        "/api/auth/profile", json={"locale": "de", "bio": "x"}, headers={**auth, "Accept-Language": "zh-CN"}
    )
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["locale"] and "取值无效" in r.json()["errors"][0][
        "message"
    ]
    assert (await h.client.get("/api/auth/me", headers=auth)).json()["user"]["bio"] is None  # nothing written

    # A reset code now comes in English, whatever the request asks for.
    r = await h.client.post(
        "/api/v1/auth/password-reset",
        json={"email": "lingo@example.com"},
        headers={"Accept-Language": "zh-CN"},
    )
    assert r.status_code == 204
    newest = (await h.mailbox("lingo@example.com"))[0]
    assert newest["kind"] == "reset_code" and newest["subject"].startswith(
        "[SproutGate] Your password reset code"
    )


async def test_a_pages_sign_up_stores_the_language_the_page_shows(harness):
    h = harness
    async with h.new_client(**{"Accept-Language": "en"}) as browser:
        page = await browser.get("/register")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        r = await browser.post(
            "/register",
            data={
                "csrf_token": token,
                "email": "pages@example.com",
                "password": PASSWORD,
                "username": "paged",
            },
        )
        assert r.status_code == 303, r.text
        page = await browser.get(r.headers["location"])
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        code = await h.last_code("pages@example.com")
        r = await browser.post(
            "/register/verify", data={"csrf_token": token, "email": "pages@example.com", "code": code}
        )
        assert r.status_code == 303, r.text
        assert "sg_device=" in r.headers.get("set-cookie", "")
    async with h.services.db.read() as s:
        from sproutgate.storage.repositories import UserRepository

        user = await UserRepository(s).by_email("pages@example.com")
    assert user is not None and user.locale == "en"


# -- operator templates and product name ---------------------------------------------------------
async def test_an_operators_template_directory_and_product_name_are_used(
    make_harness, make_settings, tmp_path
):
    templates = Path(tmp_path) / "mail"
    (templates / "en").mkdir(parents=True)
    (templates / "en" / "new_sign_in.txt").write_text(
        "{% block subject %}{{ product }}: hello from {{ ip }}{% endblock %}\n"
        "{% block body %}Custom body for {{ account }} at {{ at }}.{% endblock %}\n"
    )
    # A broken override never stops a mail: the shipped template is used instead.
    (templates / "en" / "password_changed.txt").write_text("{% block subject %}{{ oops( }}{% endblock %}")
    with SmtpServer() as smtp:
        h = await make_harness(
            make_settings(**smtp_settings(smtp, product_name="Acme Accounts", mail_templates_dir=templates))
        )
        session = await sign_up_v1(h, smtp, "custom@example.com", "en")
        async with h.new_client(ip="192.0.2.44", **{"User-Agent": "Other/1"}) as c:
            r = await c.post(
                "/api/v1/auth/sessions", json={"email": "custom@example.com", "password": PASSWORD}
            )
        assert r.status_code == 200
        message = await arrived(smtp, "custom@example.com", "Acme Accounts: hello from 192.0.2.44")
        assert (message.text or "").startswith("Custom body for custom at ")
        assert message.from_ == "Acme Accounts <no-reply@localhost>"  # the sender follows the name
        r = await h.client.put(
            "/api/auth/profile",
            json={"password": NEW_PASSWORD, "currentPassword": PASSWORD},
            headers=bearer(session["access_token"]),
        )
        assert r.status_code == 200
        message = await arrived(smtp, "custom@example.com", "[Acme Accounts] Your password was changed")
        # Files the operator did not override are ours, with the product name.
        code_mail = [m for m in smtp.messages if m.subject.startswith("[Acme Accounts] Your sign-up code")]
        assert code_mail == [] or "Acme" in code_mail[0].subject


# -- new devices: API clients ----------------------------------------------------------------
async def new_sign_in_mails(h: AppHarness, email: str) -> int:
    return len([m for m in await h.mailbox(email) if m["kind"] == "new_sign_in"])


async def sign_in(h: AppHarness, email: str, ip: str, agent: str) -> None:
    async with h.new_client(ip=ip, **{"User-Agent": agent}) as c:
        r = await c.post("/api/v1/auth/sessions", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text


async def test_api_sign_ins_are_known_by_user_agent_and_network(harness):
    h = harness
    view = await h.services.admin.create_user(
        UserFields(account="devices", email="devices@example.com", password=PASSWORD), actor="test"
    )
    assert view.user.locale == "zh-CN"  # made without a language: the default
    email = "devices@example.com"
    await sign_in(h, email, "192.0.2.10", "App/1.0")  # the very first sign-in: no news
    assert await new_sign_in_mails(h, email) == 0
    await sign_in(h, email, "192.0.2.200", "App/1.0")  # same app, same /24
    await sign_in(h, email, "192.0.2.10", "App/1.0")
    assert await new_sign_in_mails(h, email) == 0
    await sign_in(h, email, "192.0.2.10", "App/2.0")  # another app
    assert await new_sign_in_mails(h, email) == 1
    await sign_in(h, email, "198.51.100.1", "App/1.0")  # another network
    assert await new_sign_in_mails(h, email) == 2
    await sign_in(h, email, "2001:db8:1:2::5", "App/1.0")
    await sign_in(h, email, "2001:db8:1:ffff::9", "App/1.0")  # the same /48
    assert await new_sign_in_mails(h, email) == 3
    [notice] = [m for m in await h.mailbox(email) if m["kind"] == "new_sign_in"][:1]
    assert notice["subject"] == "【SproutGate】你的账号在新设备上登录"  # the stored language
    # Only keyed hashes are stored: neither the user agent nor the address.
    async with h.services.db.read() as s:
        from sqlalchemy import text

        rows = (await s.execute(text("SELECT device_hash FROM sign_in_devices"))).scalars().all()
    # ("/" and "." are outside the hashes' base64url alphabet: no chance match.)
    assert len(rows) == 4 and not any("App/" in r or "192.0.2." in r for r in rows)


async def test_a_sign_up_with_a_session_knows_its_client(harness):
    h = harness
    r = await h.client.post(
        "/api/v1/auth/verifications",
        json={"email": "fresh@example.com", "password": PASSWORD, "username": "fresh"},
    )
    assert r.status_code == 202
    r = await h.client.post(
        "/api/v1/auth/verifications/verify",
        json={"email": "fresh@example.com", "token": await h.last_code("fresh@example.com")},
    )
    assert r.status_code == 200
    r = await h.client.post(
        "/api/v1/auth/sessions", json={"email": "fresh@example.com", "password": PASSWORD}
    )
    assert r.status_code == 200
    assert await new_sign_in_mails(h, "fresh@example.com") == 0
    await sign_in(h, "fresh@example.com", "192.0.2.99", "Elsewhere/1")
    assert await new_sign_in_mails(h, "fresh@example.com") == 1


# -- new devices: the pages' cookie ---------------------------------------------------------
async def pages_sign_in(client: Any, who: str) -> Any:
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = await client.post("/login", data={"csrf_token": token, "identifier": who, "password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/account", r.text
    return r


async def test_pages_remember_a_browser_with_a_signed_cookie(harness):
    h = harness
    await h.services.admin.create_user(
        UserFields(account="browser", email="browser@example.com", password=PASSWORD), actor="test"
    )
    email = "browser@example.com"
    async with h.new_client(**{"User-Agent": "Firefox/1"}) as first:
        r = await pages_sign_in(first, email)
        device = [c for c in r.headers.get_list("set-cookie") if c.startswith("sg_device=")]
        assert device and "HttpOnly" in device[0] and "Max-Age=34560000" in device[0]
        assert "samesite=lax" in device[0].lower()
        assert await new_sign_in_mails(h, email) == 0  # the very first sign-in
        cookie = first.cookies["sg_device"]
        first.cookies.delete("sg_session")
        first.headers["X-Forwarded-For"] = "203.0.113.77"
        first.headers["User-Agent"] = "Firefox/2"
        await pages_sign_in(first, email)  # the same browser, even from elsewhere, updated
        assert await new_sign_in_mails(h, email) == 0
    # Another browser on the same machine and address (same user agent): a new device.
    async with h.new_client(**{"User-Agent": "Firefox/1"}) as second:
        await pages_sign_in(second, email)
    assert await new_sign_in_mails(h, email) == 1
    # A cookie we did not sign counts for nothing, and is replaced.
    device_id = cookie.split(".")[0]
    async with h.new_client(**{"User-Agent": "Firefox/1"}) as forged:
        forged.cookies.set("sg_device", f"{device_id}.forgedmac")
        r = await pages_sign_in(forged, email)
        renewed = [c for c in r.headers.get_list("set-cookie") if c.startswith("sg_device=")]
        assert renewed and "forgedmac" not in renewed[0] and device_id not in renewed[0]
    assert await new_sign_in_mails(h, email) == 2
    # The genuine cookie still works in a fresh jar.
    async with h.new_client() as again:
        again.cookies.set("sg_device", cookie)
        await pages_sign_in(again, email)
    assert await new_sign_in_mails(h, email) == 2
