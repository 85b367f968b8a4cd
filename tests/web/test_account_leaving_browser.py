"""Downloading one's data and deleting the account on the account pages, in headless Chromium
against a real server, in both languages."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect
from web_support import PASSWORD, shot, sign_in

pytestmark = pytest.mark.browser

TEXT = {
    "en-US": {
        "download": "Download my data",
        "start": "Delete account…",
        "title": "Delete the account {account}?",
        "password": "Your password, to confirm",
        "submit": "Delete my account",
        "wrong": "The password is wrong.",
        "deleted": "Your account was deleted",
        "hold": "for 30 days",
    },
    "zh-CN": {
        "download": "下载我的数据",
        "start": "删除账号…",
        "title": "删除账号 {account}?",
        "password": "输入密码以确认",
        "submit": "永久删除我的账号",
        "wrong": "密码错误",
        "deleted": "你的账号已删除",
        "hold": "30 天内",
    },
}


@pytest.mark.parametrize("lang", ["en-US", "zh-CN"])
def test_download_my_data_then_delete_the_account(site, new_page, lang):
    text = TEXT[lang]
    user = site.create_user()
    page = new_page(lang=lang)
    other_device = new_page(lang=lang)
    sign_in(page, user["account"])
    sign_in(other_device, user["account"])
    expect(page).to_have_url(re.compile(r"/account$"))

    # The download: a JSON attachment of what is stored, and the button stays usable.
    button = page.get_by_role("button", name=text["download"])
    with page.expect_download() as info:
        button.click()
    download = info.value
    assert re.fullmatch(rf"sproutgate-{user['account']}-\d{{8}}\.json", download.suggested_filename)
    data = json.loads(open(download.path(), encoding="utf-8").read())
    assert data["profile"]["account"] == user["account"] and data["profile"]["email"] == user["email"]
    assert len([s for s in data["sessions"] if s["ended_at"] is None]) == 2
    assert "password_hash" not in json.dumps(data)
    expect(button).to_be_enabled()

    # The confirmation step: its own page, saying what happens, asking for the password.
    page.get_by_role("link", name=text["start"]).click()
    expect(page).to_have_url(re.compile(r"/account/delete$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(text["title"].format(account=user["account"]))
    expect(page.get_by_test_id("delete-consequences")).to_contain_text(text["hold"])
    expect(page.get_by_test_id("delete-consequences")).to_contain_text(user["email"])
    shot(page, "account_delete" if lang == "en-US" else "account_delete_zh")
    page.get_by_label(text["password"]).fill("Wrong#pass2026")
    page.get_by_role("button", name=text["submit"]).click()
    expect(page.locator("#f-password-error")).to_have_text(text["wrong"])
    expect(page.get_by_label(text["password"])).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label(text["password"])).to_be_focused()

    page.get_by_label(text["password"]).fill(PASSWORD)
    page.get_by_role("button", name=text["submit"]).click()
    expect(page).to_have_url(re.compile(r"/login\?notice=account_deleted"))
    expect(page.get_by_role("status")).to_contain_text(text["deleted"])
    assert "sg_session" not in {c["name"] for c in page.context.cookies()}

    # Every session ended: the other device is signed out, and the password opens nothing.
    other_device.goto("/account")
    expect(other_device).to_have_url(re.compile(r"/login\?next=%2Faccount"))
    sign_in(page, user["account"])
    expect(page.locator(".field-error")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/login"))
    assert site.user(user["account"]) is None
