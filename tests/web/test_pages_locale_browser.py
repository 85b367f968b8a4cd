"""Issue 14 in Chromium: the language of mail is chosen on the account page, in either page
language, and a second browser's sign-in is then announced in it; the device cookie that
remembers a browser is out of scripts' reach."""

from __future__ import annotations

import time

from playwright.sync_api import expect
from web_support import shot, sign_in


def newest_mail(site, email: str, kind: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in site.http.get("/dev/mailbox", params={"to": email}).json() if m["kind"] == kind]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"no {kind} mail to {email}"
        time.sleep(0.1)


def test_the_language_of_mail_is_chosen_on_the_account_page(site, new_page):
    user = site.create_user()
    assert user["locale"] == "zh-CN"  # made without a language: the default
    page = new_page(lang="en-US")
    sign_in(page, user["email"])
    form = page.locator("form[action='/account/profile']")
    choice = form.get_by_label("Language of emails")
    expect(choice).to_have_value("zh-CN")
    expect(form.locator("#f-locale-hint")).to_contain_text("Codes and security notices")
    choice.select_option("en")
    form.get_by_role("button", name="Save profile").click()
    expect(page.get_by_role("status")).to_have_text("Your profile was saved.")
    expect(page.locator("form[action='/account/profile']").get_by_label("Language of emails")).to_have_value(
        "en"
    )
    assert site.user(user["account"])["locale"] == "en"
    shot(page, "account_mail_language")

    # The device cookie: long-lived, HttpOnly (scripts never see it).
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["sg_device"]["httpOnly"] and cookies["sg_device"]["sameSite"] == "Lax"
    assert cookies["sg_device"]["expires"] > time.time() + 390 * 24 * 3600
    assert "sg_device" not in page.evaluate("() => document.cookie")

    # Another browser, showing Chinese pages: its sign-in is news, mailed in English.
    other = new_page(lang="zh-CN")
    sign_in(other, user["email"])
    expect(other).to_have_url(f"{site.url}/account")
    notice = newest_mail(site, user["email"], "new_sign_in")
    assert notice["subject"] == "[SproutGate] New sign-in to your account"
    assert "When: " in notice["text"] and "HeadlessChrome" in notice["text"]

    # The same page in Chinese sets it back.
    form = other.locator("form[action='/account/profile']")
    form.get_by_label("邮件语言").select_option("zh-CN")
    form.get_by_role("button", name="保存资料").click()
    expect(other.get_by_role("status")).to_be_visible()
    assert site.user(user["account"])["locale"] == "zh-CN"

    # The first browser signs in again: known, so no second notice.
    page.context.clear_cookies(name="sg_session")
    sign_in(page, user["email"])
    expect(page).to_have_url(f"{site.url}/account")
    mails = site.http.get("/dev/mailbox", params={"to": user["email"]}).json()
    assert [m["kind"] for m in mails].count("new_sign_in") == 1
