"""The admin console's apps page (issue 12) in headless Chromium against a real server: register
an app (a refused redirect URI first), see its secret once, edit it, replace the secret, remove
it, read the audit trail; the same page in Chinese."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect
from web_support import ADMIN_TOKEN, shot

pytestmark = pytest.mark.browser

ADMIN = {"X-Admin-Token": ADMIN_TOKEN}


def open_console(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/admin")
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Open the console").click()
    expect(page.get_by_role("button", name="Leave the console")).to_be_visible()


def test_admin_registers_edits_rotates_and_removes_an_app(site, new_page):
    page = new_page()
    open_console(page)
    page.get_by_role("link", name="Apps").click()
    expect(page).to_have_url(f"{site.url}/admin/clients")
    expect(page.get_by_role("link", name="Apps")).to_have_attribute("aria-current", "page")

    name = f"Family Web {uuid.uuid4().hex[:6]}"
    page.get_by_text("Register an app").click()
    form = page.locator("form[action='/admin/clients']")
    form.get_by_label("Name", exact=True).fill(name)
    form.get_by_label(re.compile("^Redirect URIs")).fill("https://web.example.com/cb#top")
    form.get_by_label("First-party app").check()
    form.get_by_role("checkbox", name=re.compile("offline_access")).check()
    form.get_by_role("button", name="Register").click()
    expect(page.locator("#f-redirect_uris-error")).to_have_text(
        "Redirect URIs must not contain a fragment (#...)."
    )
    form = page.locator("form[action='/admin/clients']")
    expect(form.get_by_label("Name", exact=True)).to_have_value(name)
    expect(form.get_by_label("First-party app")).to_be_checked()
    form.get_by_label(re.compile("^Redirect URIs")).fill("https://web.example.com/cb\nhttp://127.0.0.1/cb")
    form.get_by_role("button", name="Register").click()

    expect(page.get_by_role("heading", name=f"{name} is registered")).to_be_visible()
    client_id = page.get_by_test_id("client-id").inner_text()
    secret = page.get_by_test_id("client-secret").inner_text()
    assert len(secret) == 43
    expect(page.get_by_test_id("secret-once")).to_contain_text("shown only this once")
    shot(page, "admin_client_created")
    stored = site.http.get(f"/api/admin/clients/{client_id}", headers=ADMIN).json()["client"]
    assert stored["firstParty"] is True and stored["public"] is False
    assert stored["redirectUris"] == ["https://web.example.com/cb", "http://127.0.0.1/cb"]
    assert stored["scopes"] == ["openid", "profile", "email", "offline_access"]

    page.get_by_role("link", name="Back to apps").click()
    row = page.locator(f"tr[data-client-id='{client_id}']")
    expect(row).to_contain_text(name)
    expect(row).to_contain_text("Confidential")
    expect(row).to_contain_text("First-party")
    assert secret not in page.content()
    shot(page, "admin_clients")

    row.get_by_role("link", name=re.compile("^Edit")).click()
    expect(page.get_by_test_id("client-id")).to_have_text(client_id)
    shot(page, "admin_client_edit")
    page.get_by_label("Name", exact=True).fill(f"{name} 2")
    page.get_by_label("First-party app").uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("The app was saved.")
    row = page.locator(f"tr[data-client-id='{client_id}']")
    expect(row).to_contain_text(f"{name} 2")
    expect(row).not_to_contain_text("First-party")

    row.get_by_role("link", name=re.compile("^Edit")).click()
    page.get_by_role("button", name="Replace the secret").click()
    expect(page.get_by_role("heading", name=f"New secret for {name} 2")).to_be_visible()
    new_secret = page.get_by_test_id("client-secret").inner_text()
    assert new_secret != secret and len(new_secret) == 43

    page.get_by_role("link", name="Back to apps").click()
    page.locator(f"tr[data-client-id='{client_id}']").get_by_role("link", name=re.compile("^Delete")).click()
    expect(page.get_by_role("region", name=f"Remove {name} 2?")).to_contain_text(client_id)
    page.get_by_role("button", name="Delete permanently").click()
    expect(page.get_by_role("status")).to_have_text("The app was removed.")
    expect(page.locator(f"tr[data-client-id='{client_id}']")).to_have_count(0)
    assert site.http.get(f"/api/admin/clients/{client_id}", headers=ADMIN).status_code == 404

    page.get_by_role("link", name="Audit log").click()
    audit = page.get_by_test_id("audit")
    events = audit.locator("tr", has_text=client_id)
    expect(events.first).to_contain_text("Removed an app")
    expect(audit.locator("tr[data-action='client.rotate_secret']", has_text=client_id)).to_contain_text(
        "Replaced an app's secret"
    )
    expect(audit.locator("tr[data-action='client.update']", has_text=client_id)).to_contain_text(
        "first-party → no"
    )
    assert secret not in page.content() and new_secret not in page.content()


def test_the_apps_page_in_chinese(site, new_page):
    page = new_page(lang="zh-CN")
    open_zh = page
    open_zh.goto("/admin")
    open_zh.get_by_label("管理员 Token").fill(ADMIN_TOKEN)
    open_zh.get_by_role("button", name="进入后台").click()
    page.get_by_role("link", name="应用").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    page.get_by_text("登记应用").first.click()
    form = page.locator("form[action='/admin/clients']")
    form.get_by_label("名称", exact=True).fill("手机应用")
    form.get_by_label(re.compile("^公开客户端")).check()
    form.get_by_label(re.compile("^回调地址")).fill("myapp://callback")
    form.get_by_role("button", name="登记", exact=True).click()
    expect(page.locator("#f-redirect_uris-error")).to_have_text(
        "回调地址自定义 scheme 应为倒序域名(如 com.example.app)。"
    )
    form = page.locator("form[action='/admin/clients']")
    form.get_by_label(re.compile("^回调地址")).fill("com.example.phone:/oauth")
    form.get_by_role("button", name="登记", exact=True).click()
    expect(page.get_by_role("heading", name="已登记应用「手机应用」")).to_be_visible()
    expect(page.get_by_test_id("client-secret")).to_have_count(0)
    expect(page.get_by_text("公开客户端没有密钥,使用 PKCE。")).to_be_visible()
    shot(page, "admin_client_created_zh")
    client_id = page.get_by_test_id("client-id").inner_text()
    page.get_by_role("link", name="编辑").click()
    # A public client has no secret to replace, and its type cannot change.
    expect(page.get_by_role("button", name="生成新密钥")).to_have_count(0)
    expect(page.get_by_label(re.compile("^公开客户端"))).to_have_count(0)
    assert site.http.delete(f"/api/admin/clients/{client_id}", headers=ADMIN).status_code == 200
