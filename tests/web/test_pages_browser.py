"""The hosted pages driven in headless Chromium against a real server process."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect
from web_support import ADMIN_TOKEN, PASSWORD, REBOUND_NAME, shot, sign_in

from support.fake_openai import Text, ToolCall, ToolCalls

pytestmark = pytest.mark.browser


def test_signup_with_the_code_from_the_dev_mailbox(site, new_page):
    page = new_page()
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    page.goto("/register")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Display name").fill("Ada Sprout")
    page.get_by_label(re.compile("^Account name")).fill(f"ada{uuid.uuid4().hex[:6]}")
    page.get_by_label("Password").fill(PASSWORD)
    shot(page, "register")
    page.get_by_role("button", name="Send the code").click()

    expect(page).to_have_url(re.compile(r"/register/verify\?email="))
    expect(page.get_by_label("Email")).to_have_value(email)
    shot(page, "register_verify")

    # Read the code where a developer would: the dev mailbox page, in a browser on this machine.
    mailbox = new_page(remote=False)
    mailbox.set_extra_http_headers({"X-Forwarded-For": "127.0.0.1"})  # local clients only
    mailbox.goto(f"/dev/mailbox?to={email}")
    newest = mailbox.locator(".mail").first
    expect(newest).to_contain_text(email)
    code = re.search(r"\b(\d{6})\b", newest.locator(".mail-subject").inner_text()).group(1)
    assert f"/register/verify?email={email.replace('@', '%40')}" in newest.locator(".mail-body").inner_text()
    shot(mailbox, "dev_mailbox")

    page.get_by_label("6-digit code").fill(code)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/account"))
    expect(page.get_by_role("status")).to_contain_text("Welcome")
    expect(page.locator(".profile-name")).to_have_text("Ada Sprout")

    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["sg_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    assert cookies["sg_csrf"]["httpOnly"]
    assert page.evaluate("() => Object.keys(window.localStorage).length") == 0
    assert "sg_session" not in page.evaluate("() => document.cookie")


def test_wrong_code_is_shown_next_to_the_code_field(site, new_page):
    page = new_page()
    page.goto("/register/verify?email=nobody@example.com")
    page.get_by_label("6-digit code").fill("000000")
    page.get_by_role("button", name="Create account").click()
    error = page.locator("#f-code-error")
    expect(error).to_have_text(re.compile("invalid or has expired"))
    expect(page.get_by_label("6-digit code")).to_have_attribute("aria-invalid", "true")


def test_sign_in_wrong_password_then_right_returns_to_the_app(site, new_page):
    user = site.create_user()
    page = new_page()
    target = f"{site.app_origin}/app/welcome?x=1"
    page.goto(f"/login?redirect_to={target}")
    page.get_by_label("Account or email").fill(user["email"])
    page.locator("#f-password").fill("not-the-password")
    # Record the busy state the script shows while the request runs (the page is replaced after).
    page.evaluate(
        """() => {
            const form = document.querySelector("form[action='/login']");
            const button = form.querySelector("button[type=submit]");
            new MutationObserver(() => {
                if (button.disabled) sessionStorage.setItem("busy", JSON.stringify(
                    [button.textContent, form.getAttribute("aria-busy")]));
            }).observe(form, {attributes: true, childList: true, characterData: true, subtree: true});
        }"""
    )
    submit = page.locator("form[action='/login'] button[type=submit]")
    submit.click()
    expect(page.locator("#f-password-error")).to_have_text("Wrong account or password.")
    assert page.evaluate("() => JSON.parse(sessionStorage.getItem('busy'))") == ["Working…", "true"]
    expect(submit).to_be_enabled()
    expect(page.get_by_label("Account or email")).to_have_value(user["email"])
    shot(page, "login_error")

    page.locator("#f-password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).last.click()
    page.wait_for_url(target)


def test_redirect_to_outside_the_allow_list_is_ignored(site, new_page):
    user = site.create_user()
    page = new_page()
    sign_in(page, user["account"], path="/login?redirect_to=https://evil.example/steal")
    expect(page).to_have_url(f"{site.url}/account")


def test_forms_work_without_javascript(site, new_page):
    user = site.create_user()
    page = new_page(javascript=False)
    page.goto("/login")
    shot(page, "login")
    sign_in(page, user["account"])
    expect(page).to_have_url(f"{site.url}/account")
    expect(page.locator(".profile-name")).to_have_text(user["username"])


def test_forgot_password_and_reset(site, new_page):
    user = site.create_user()
    page = new_page()
    page.goto("/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill(user["email"])
    shot(page, "forgot_password")
    page.get_by_role("button", name="Send the code").click()
    expect(page).to_have_url(re.compile(r"/forgot-password/confirm\?email="))
    expect(page.get_by_label("Email")).to_have_value(user["email"])

    code = site.code_for(user["email"])
    page.get_by_label("6-digit code").fill(code)
    page.get_by_label("New password").fill("short")
    page.get_by_role("button", name="Reset password").click()
    expect(page.locator("#f-new_password-error")).to_have_text(
        "New password must be at least 6 characters long."
    )
    # What was typed stays (the password excepted), so only the password needs typing again.
    expect(page.get_by_label("6-digit code")).to_have_value(code)
    expect(page.get_by_label("Email")).to_have_value(user["email"])
    shot(page, "reset_password_error")

    # The code was consumed only if the password was accepted: use it again with a good one.
    page.get_by_label("New password").fill("Fresh#Sprout2026")
    page.get_by_role("button", name="Reset password").click()
    expect(page).to_have_url(re.compile(r"/login\?notice=password_reset"))
    expect(page.get_by_role("status")).to_contain_text("password was reset")
    sign_in(page, user["account"], "Fresh#Sprout2026")
    expect(page).to_have_url(f"{site.url}/account")


def test_profile_edit_renders_markdown_bio_safely(site, new_page):
    user = site.create_user()
    page = new_page()
    sign_in(page, user["email"])
    form = page.locator("form[action='/account/profile']")
    form.get_by_label("Avatar URL").fill("ftp://example.com/a.png")
    form.get_by_role("button", name="Save profile").click()
    expect(page.locator("#f-avatar_url-error")).to_have_text("Avatar URL must be an http(s) URL.")

    form = page.locator("form[action='/account/profile']")
    form.get_by_label("Display name").fill("Grace 小芽")
    form.get_by_label("Avatar URL").fill(f"{site.url}/static/favicon.svg")
    form.get_by_label("Bio").fill(
        "I grow **sprouts** and write [docs](https://example.com/docs).\n\n"
        "<script>window.pwned = 1</script>\n\n[click](javascript:alert(1)) ![x](https://example.com/t.png)"
    )
    form.get_by_role("button", name="Save profile").click()
    expect(page.get_by_role("status")).to_have_text("Your profile was saved.")
    expect(page.locator(".profile-name")).to_have_text("Grace 小芽")
    bio = page.get_by_test_id("bio")
    expect(bio.locator("strong")).to_have_text("sprouts")
    link = bio.get_by_role("link", name="docs")
    expect(link).to_have_attribute("href", "https://example.com/docs")
    expect(link).to_have_attribute("rel", re.compile("noopener"))
    assert bio.locator("script, img").count() == 0
    assert bio.locator("a[href^='javascript']").count() == 0
    assert page.evaluate("() => window.pwned") is None
    expect(page.locator("img.avatar")).to_have_attribute("src", f"{site.url}/static/favicon.svg")

    form = page.locator("form[action='/account/profile']")
    form.get_by_label("Bio").fill(
        "Gardener and **open-source** maintainer.\n\n"
        "- Grows sprouts on the balcony\n- Writes [docs](https://example.com/docs)\n\n"
        "> Small steps, deep roots."
    )
    form.get_by_label("Phone").fill("+86 138 0000 0000")
    form.get_by_role("button", name="Save profile").click()
    expect(page.get_by_test_id("bio").locator("li")).to_have_count(2)
    shot(page, "account")


def test_change_password_needs_the_current_one(site, new_page):
    user = site.create_user()
    page = new_page()
    sign_in(page, user["account"])
    form = page.locator("form[action='/account/password']")
    form.get_by_label("Current password").fill("wrong-one")
    form.get_by_label("New password").fill("Another#Sprout9")
    form.get_by_role("button", name="Change password").click()
    expect(page.locator("#f-current_password-error")).to_have_text("The current password is wrong.")
    form = page.locator("form[action='/account/password']")
    form.get_by_label("Current password").fill(PASSWORD)
    form.get_by_label("New password").fill("Another#Sprout9")
    form.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status")).to_contain_text("password was changed")


def test_add_and_verify_a_secondary_email_then_sign_in_with_it(site, new_page):
    user = site.create_user()
    extra = f"alt-{uuid.uuid4().hex[:8]}@example.org"
    page = new_page()
    sign_in(page, user["account"])
    page.get_by_label("New address").fill(extra)
    page.get_by_role("button", name="Add address").click()
    expect(page.get_by_role("status")).to_contain_text(extra)
    page.get_by_label(f"Code sent to {extra}").fill(site.code_for(extra))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("status")).to_have_text("The address was verified and added.")
    expect(page.get_by_test_id("secondary-emails")).to_contain_text(extra)

    other = new_page()
    sign_in(other, extra)
    expect(other).to_have_url(f"{site.url}/account")


def test_sign_out_another_session_then_everywhere(site, new_page):
    user = site.create_user()
    laptop, phone = new_page(), new_page()
    sign_in(laptop, user["account"])
    sign_in(phone, user["account"])
    laptop.reload()
    sessions = laptop.locator(".session")
    expect(sessions).to_have_count(2)
    expect(laptop.locator(".session.current")).to_have_count(1)
    shot(laptop, "account_sessions")

    laptop.locator(".session:not(.current)").get_by_role("button", name="Sign out").click()
    expect(laptop.get_by_role("status")).to_have_text("That session was signed out.")
    expect(laptop.locator(".session")).to_have_count(1)
    phone.goto("/account")
    expect(phone).to_have_url(re.compile(r"/login\?next=%2Faccount"))

    laptop.get_by_role("button", name="Sign out everywhere").click()
    expect(laptop).to_have_url(re.compile(r"/login\?notice=logged_out"))
    laptop.goto("/account")
    expect(laptop).to_have_url(re.compile(r"/login"))


def test_admin_console_with_token_edit_disable_and_delete(site, new_page):
    user = site.create_user()
    page = new_page()
    page.goto("/admin")
    page.get_by_label("Admin token").fill("nope")
    page.get_by_role("button", name="Open the console").click()
    expect(page.locator("#f-token-error")).to_have_text("A valid admin token is required.")
    shot(page, "admin_sign_in")
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Open the console").click()
    expect(page.get_by_role("heading", name="Admin console")).to_be_visible()
    admin_cookie = next(c for c in page.context.cookies() if c["name"] == "sg_console")
    assert (
        admin_cookie["httpOnly"] and admin_cookie["path"] == "/" and ADMIN_TOKEN not in admin_cookie["value"]
    )
    shot(page, "admin_users")

    page.get_by_text("New user").click()
    create = page.locator("form[action='/admin/users']")
    created = f"made{uuid.uuid4().hex[:6]}"
    create.get_by_label("Account name").fill(created)
    create.get_by_label("Email").fill(f"{created}@example.com")
    create.get_by_label("Password").fill("x")
    create.get_by_label("Sprout coins").fill("50")
    create.get_by_role("button", name="Create user").click()
    expect(page.locator("#f-password-error")).to_have_text("Password must be at least 6 characters long.")
    create = page.locator("form[action='/admin/users']")
    expect(create.get_by_label("Account name")).to_have_value(created)
    create.get_by_label("Password").fill(PASSWORD)
    create.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("status")).to_have_text("The user was created.")
    expect(page.locator(f"tr[data-account='{created}'] td.num")).to_have_text(["0", "50"])

    page.get_by_role("searchbox").fill(user["account"])
    page.get_by_role("button", name="Search").click()
    row = page.locator(f"tr[data-account='{user['account']}']")
    expect(page.get_by_test_id("total")).to_have_text("1 user")
    row.get_by_role("link", name=re.compile("^Edit")).click()
    shot(page, "admin_edit_user")
    page.get_by_label("Level").fill("-3")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#f-level-error")).to_have_text("Level must be a whole number, 0 or more.")
    page.get_by_label("Level").fill("7")
    page.get_by_label("Sprout coins").fill("1200")
    page.get_by_label(re.compile("^Disabled")).check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("The user was saved.")
    row = page.locator(f"tr[data-account='{user['account']}']")
    expect(row.locator("td.num")).to_have_text(["7", "1200"])
    expect(row).to_contain_text("Disabled")
    stored = site.user(user["account"])
    assert stored["level"] == 7 and stored["sproutCoins"] == 1200 and stored["disabled"] is True

    row.get_by_role("link", name=re.compile("^Delete")).click()
    expect(page.get_by_role("region", name=f"Delete {user['account']}?")).to_contain_text(user["email"])
    shot(page, "admin_delete_user")
    page.get_by_role("button", name="Delete permanently").click()
    expect(page.get_by_role("status")).to_have_text("The user was deleted.")
    assert site.user(user["account"]) is None

    page.get_by_role("link", name="Audit log").click()
    audit = page.get_by_test_id("audit")
    expect(audit.locator("tr", has_text=user["account"]).first).to_contain_text("Deleted a user")
    changed = audit.locator("tr[data-action='user.update']").first
    expect(changed).to_contain_text("Changed a user")
    expect(changed).to_contain_text("the admin token")
    expect(changed).to_contain_text("level → 7")
    shot(page, "admin_audit")

    page.get_by_role("button", name="Leave the console").click()
    expect(page.get_by_label("Admin token")).to_be_visible()


def test_leaving_the_admin_console_ends_the_session_for_copies_of_its_cookie(site, new_page):
    page = new_page()
    page.goto("/admin")
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Open the console").click()
    expect(page.get_by_role("button", name="Leave the console")).to_be_visible()
    # Someone copies the browser's cookies into another browser: the console opens there too...
    other = new_page()
    other.context.add_cookies(page.context.cookies())
    other.goto("/admin")
    expect(other.get_by_role("button", name="Leave the console")).to_be_visible()
    # ...until the admin leaves the console: the session ends on the server, for every copy.
    page.get_by_role("button", name="Leave the console").click()
    expect(page.get_by_label("Admin token")).to_be_visible()
    assert not [c for c in page.context.cookies() if c["name"] == "sg_console"]
    other.goto("/admin/audit")
    expect(other.get_by_label("Admin token")).to_be_visible()
    expect(other.get_by_role("button", name="Leave the console")).to_have_count(0)


def test_the_dev_mailbox_is_not_readable_under_a_rebound_name(site, new_page):
    email = f"rebound-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": PASSWORD, "username": "rebound"}
    assert site.http.post("/api/v1/auth/verifications", json=body).status_code == 202
    site.code_for(email)  # mailed
    # A page on the attacker's name, which DNS now resolves to this machine, in a browser on it.
    page = new_page(remote=False)
    rebound = f"http://{REBOUND_NAME}:{site.server.port}"
    response = page.goto(f"{rebound}/dev/mailbox?to={email}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    assert email not in page.content()
    # Its scripts, same-origin with the rebound name, get the 404 too.
    assert page.evaluate("fetch('/dev/mailbox').then(r => r.status)") == 404
    # Under a loopback name, with any port, the same browser reads it.
    for origin in (site.url, f"http://localhost:{site.server.port}"):
        response = page.goto(f"{origin}/dev/mailbox?to={email}")
        assert response is not None and response.status == 200
        expect(page.locator(".mail").first).to_contain_text(email)


def test_admin_role_user_reaches_the_console_by_signing_in(site, new_page):
    admin = site.create_user(role="admin")
    page = new_page()
    page.goto("/admin")
    page.get_by_role("link", name="Sign in as an admin user").click()
    sign_in(page, admin["account"], path=page.url)
    expect(page).to_have_url(f"{site.url}/admin")
    expect(page.get_by_text(f"Signed in as {admin['account']}")).to_be_visible()

    plain = site.create_user()
    other = new_page()
    sign_in(other, plain["account"], path="/login?next=/admin")
    expect(other.get_by_role("alert")).to_contain_text("not an admin")


def test_language_switch_is_remembered(site, new_page):
    page = new_page(lang="en-US")
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    page.get_by_role("link", name="中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.get_by_role("heading", level=1)).to_have_text("登录")
    shot(page, "login_zh")
    page.goto("/register")
    expect(page.get_by_role("heading", level=1)).to_have_text("注册")
    page.get_by_label("邮箱").fill("bad-address")
    page.get_by_label("昵称").fill("小芽")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="发送验证码").click()
    expect(page.locator("#f-email-error")).to_have_text("邮箱格式无效。")
    shot(page, "register_zh_error")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Create your account")

    chinese = new_page(lang="zh-CN")
    chinese.goto("/forgot-password")
    expect(chinese.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(chinese.get_by_role("heading", level=1)).to_have_text("重置密码")


def test_chat_streams_answers_and_keeps_conversations(site, new_page):
    user = site.create_user()
    page = new_page()
    sign_in(page, user["account"])
    page.get_by_role("link", name="Assistant").click()
    expect(page.get_by_text("No conversations yet.")).to_be_visible()
    delete = page.get_by_role("button", name="Delete conversation")
    expect(delete).to_be_hidden()  # nothing to delete yet

    site.llm.script(
        ToolCalls(ToolCall("update_my_profile", {"bio": "Grows **sprouts** on the balcony."})),
        Text("Done! Your bio now says you grow sprouts on the balcony.", chunk_size=6, chunk_delay=0.05),
    )
    page.get_by_label("Message").fill("Please set my bio to: grows sprouts on the balcony")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#chat-send")).to_be_disabled()
    expect(page.locator(".msg-tool")).to_contain_text("update_my_profile")
    answer = page.locator(".msg-assistant").last
    expect(answer).to_contain_text("Your bio now says", timeout=15_000)
    expect(page.locator("#chat-send")).to_be_enabled()
    expect(page.locator(".msg-assistant.streaming")).to_have_count(0)
    expect(page.locator("#chat-sessions button")).to_have_count(1)
    assert site.llm.requests[0].stream, "the page should get a streamed answer"

    site.llm.script(Text("You are welcome."))
    page.get_by_label("Message").fill("Thanks!")
    page.get_by_label("Message").press("Enter")
    expect(page.locator(".msg-assistant").last).to_have_text(re.compile("You are welcome."))
    expect(page.locator("#chat-sessions button")).to_have_count(1)
    expect(page.locator("#chat-send")).to_be_enabled()
    shot(page, "chat")

    page.goto("/account")
    expect(page.get_by_test_id("bio").locator("strong")).to_have_text("sprouts")

    # The conversation survives a reload and can be deleted.
    page.goto("/chat")
    page.locator("#chat-sessions button").first.click()
    expect(page.locator(".msg-user")).to_have_count(2)
    expect(page.locator(".msg-user").first).to_contain_text("balcony")
    expect(delete).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    delete.click()
    expect(page.get_by_text("No conversations yet.")).to_be_visible()
    expect(delete).to_be_hidden()
    expect(page.locator(".msg")).to_have_count(0)
    page.reload()
    expect(page.get_by_text("No conversations yet.")).to_be_visible()


def test_chat_shows_model_errors(site, new_page):
    from support.fake_openai import Fail

    user = site.create_user()
    page = new_page()
    sign_in(page, user["account"])
    page.goto("/chat")
    site.llm.script(Fail(400, "model rejected the request", "invalid_request_error"), Fail(400))
    page.get_by_label("Message").fill("hello?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".msg-error")).to_contain_text("Something went wrong", timeout=20_000)
    expect(page.locator("#chat-send")).to_be_enabled()
