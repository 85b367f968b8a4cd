"""The account page's sessions (list, sign out another device, sign out the other devices) and
changing the primary address, in headless Chromium against a real server, in both languages."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect
from web_support import PASSWORD, shot, sign_in

pytestmark = pytest.mark.browser

TEXT = {
    "en-US": {
        "this_device": "This device",
        "last_used": "Last used",
        "revoked": "That session was signed out.",
        "others": "Sign out other devices",
        "others_done": "Your other sessions were signed out.",
        "new_primary": "New primary address",
        "send": "Send code",
        "sent": "If {email} can be used, a code was sent to it.",
        "code": "Code sent to {email}",
        "verify": "Verify and change",
        "changed": "Your primary address is now {email}.",
    },
    "zh-CN": {
        "this_device": "当前设备",
        "last_used": "最近使用",
        "revoked": "该会话已退出。",
        "others": "退出其他设备",
        "others_done": "其他设备都已退出。",
        "new_primary": "新的主邮箱",
        "send": "发送验证码",
        "sent": "如果该邮箱可以使用,验证码已发送到 {email}。",
        "code": "发送到 {email} 的验证码",
        "verify": "验证并更换",
        "changed": "主邮箱已更换为 {email}。",
    },
}


@pytest.mark.parametrize("lang", ["en-US", "zh-CN"])
def test_sessions_on_the_account_page(site, new_page, lang):
    text = TEXT[lang]
    user = site.create_user()
    page = new_page(lang=lang)
    other_device = new_page(lang=lang)
    third_device = new_page(lang=lang)
    for p in (other_device, third_device, page):
        sign_in(p, user["account"])
    expect(page).to_have_url(re.compile(r"/account$"))

    sessions = page.locator("#sessions li.session")
    expect(sessions).to_have_count(3)
    expect(sessions.first).to_contain_text(text["this_device"])  # newest first: this one
    expect(page.locator("#sessions li.session.current")).to_have_count(1)
    expect(sessions.first).to_contain_text(text["last_used"])
    shot(page, "account_sessions_list" if lang == "en-US" else "account_sessions_list_zh")

    # Sign out one other device: it is gone from the list and signed out there.
    page.locator("#sessions li.session:not(.current)").first.get_by_role("button").click()
    expect(page.get_by_role("status")).to_contain_text(text["revoked"])
    expect(page.locator("#sessions li.session")).to_have_count(2)
    third_device.goto("/account")
    expect(third_device).to_have_url(re.compile(r"/login\?next=%2Faccount"))

    # Sign out the others: this browser stays.
    page.get_by_role("button", name=text["others"]).click()
    expect(page.get_by_role("status")).to_contain_text(text["others_done"])
    expect(page.locator("#sessions li.session")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"/account"))
    other_device.goto("/account")
    expect(other_device).to_have_url(re.compile(r"/login\?next=%2Faccount"))


@pytest.mark.parametrize("lang", ["en-US", "zh-CN"])
def test_changing_the_primary_address_on_the_account_page(site, new_page, lang):
    text = TEXT[lang]
    user = site.create_user()
    new = f"n{uuid.uuid4().hex[:8]}@example.com"
    page = new_page(lang=lang)
    sign_in(page, user["account"])

    page.get_by_label(text["new_primary"], exact=True).fill(new.upper())
    page.get_by_role("button", name=text["send"]).click()
    expect(page.get_by_role("status")).to_contain_text(text["sent"].format(email=new))
    code_field = page.get_by_label(text["code"].format(email=new))
    expect(code_field).to_be_visible()
    code = site.code_for(new)
    code_field.fill("000000" if code != "000000" else "111111")
    page.get_by_role("button", name=text["verify"]).click()
    expect(page.locator("#f-change_code-error")).to_be_visible()
    page.get_by_label(text["code"].format(email=new)).fill(code)
    shot(page, "account_primary_email" if lang == "en-US" else "account_primary_email_zh")
    page.get_by_role("button", name=text["verify"]).click()
    expect(page.get_by_role("status")).to_contain_text(text["changed"].format(email=new))
    expect(page.locator(".facts")).to_contain_text(new)

    # The old address no longer signs in; the new one does.
    other = new_page(lang=lang)
    sign_in(other, user["email"], PASSWORD)
    expect(other).to_have_url(re.compile(r"/login"))
    expect(other.locator(".field-error, .alert").first).to_be_visible()
    sign_in(other, new, PASSWORD)
    expect(other).to_have_url(re.compile(r"/account$"))
