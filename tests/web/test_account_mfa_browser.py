"""Two-step verification as a person does it, in headless Chromium against a real server: enrol
an authenticator app on the account page, read the QR code off the screen with zbarimg, compute
the code with oathtool (independent of pyotp and of our code), confirm, download the recovery
codes, sign out, sign in with the second step, and later with a recovery code; in both
languages. The Debian tools are installed on first use, like the browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from playwright.sync_api import Page, expect
from web_support import ADMIN_TOKEN, PASSWORD, shot, sign_in

from support.debian import apt_install

pytestmark = pytest.mark.browser

TOOLS = {"zbarimg": "zbar-tools", "oathtool": "oathtool"}
TEXT = {
    "en-US": {
        "start": "Set up an authenticator app",
        "cannot_scan": "Can't scan it? Type the key in instead",
        "first_code": "Code from the app",
        "confirm": "Confirm and turn on",
        "on": "Two-step verification is on",
        "download": "Download the codes (.txt)",
        "saved": "I saved them: back to my account",
        "left": "{n} unused recovery codes left.",
        "second_step": "Two-step verification",
        "app_code": "Code from your authenticator app",
        "verify": "Verify and sign in",
        "lost_phone": "No phone at hand? Use a recovery code",
        "recovery_code": "Recovery code",
        "recovery_submit": "Sign in with a recovery code",
        "wrong": "The code is wrong or has already been used.",
        "sign_out": "Sign out",
    },
    "zh-CN": {
        "start": "设置验证器应用",
        "cannot_scan": "无法扫描?手动输入密钥",
        "first_code": "应用显示的验证码",
        "confirm": "确认并开启",
        "on": "两步验证已开启",
        "download": "下载恢复码(.txt)",
        "saved": "我已保存,返回账号",
        "left": "剩余 {n} 个未用的恢复码。",
        "second_step": "两步验证",
        "app_code": "验证器应用中的验证码",
        "verify": "验证并登录",
        "lost_phone": "手机不在身边?使用恢复码",
        "recovery_code": "恢复码",
        "recovery_submit": "用恢复码登录",
        "wrong": "验证码错误或已被使用",
        "sign_out": "退出登录",
    },
}


def _ensure_tools() -> None:
    missing = [pkg for tool, pkg in TOOLS.items() if not shutil.which(tool)]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip(f"needs {', '.join(missing)} (Debian packages) and no root to install them")
    apt_install(*missing)
    still = [tool for tool in TOOLS if not shutil.which(tool)]
    if still:
        pytest.fail(f"`apt-get install {' '.join(missing)}` did not provide {', '.join(still)}")


def _run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (argv, done.stderr)
    return done.stdout.strip()


def oathtool_code(secret: str, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows, ``steps_ahead`` 30-second steps from now (the
    server accepts one step of drift; a step already used is refused as a replay)."""
    return _run("oathtool", "--totp", "-b", "--now", f"@{int(time.time()) + 30 * steps_ahead}", secret)


def sign_out(page: Page, text: dict[str, str]) -> None:
    page.locator("form[action='/logout'] button").click()
    expect(page).to_have_url(re.compile(r"/login"))


def password_step(page: Page, account: str, text: dict[str, str]) -> None:
    sign_in(page, account)
    expect(page.get_by_role("heading", level=1)).to_have_text(text["second_step"])


@pytest.mark.parametrize("lang", ["en-US", "zh-CN"])
def test_enrol_from_the_qr_code_on_screen_then_sign_in_with_a_code_and_a_recovery_code(
    site, new_page, lang, tmp_path: Path
):
    _ensure_tools()
    text = TEXT[lang]
    user = site.create_user()
    page = new_page(lang=lang)
    sign_in(page, user["account"])
    expect(page).to_have_url(re.compile(r"/account$"))

    # Enrol: signed in just now, so no password is asked for.
    section = page.get_by_test_id("mfa-section")
    section.get_by_role("button", name=text["start"]).click()
    expect(page).to_have_url(re.compile(r"/account/mfa/totp$"))
    qr = page.get_by_test_id("totp-qr")
    expect(qr).to_be_visible()
    qr.screenshot(path=str(tmp_path / "qr.png"))
    scanned = _run("zbarimg", "-q", "--raw", str(tmp_path / "qr.png"))
    uri = urlsplit(scanned)
    assert uri.scheme == "otpauth" and uri.netloc == "totp", scanned
    assert uri.path == f"/SproutGate:{user['account']}" and parse_qs(uri.query)["issuer"] == ["SproutGate"]
    secret = parse_qs(uri.query)["secret"][0]
    # The typed-secret fallback shows the same key, in groups of four.
    page.get_by_text(text["cannot_scan"]).click()
    typed = page.get_by_test_id("totp-secret").inner_text()
    assert typed.replace(" ", "") == secret and re.fullmatch(r"([A-Z2-7]{4} )+[A-Z2-7]{4}", typed)
    if lang == "en-US":
        shot(page, "account_mfa_enrol")

    code = page.get_by_label(text["first_code"])
    code.fill("000000" if oathtool_code(secret) != "000000" else "111111")
    page.get_by_role("button", name=text["confirm"]).click()
    expect(page.locator("#f-code-error")).to_have_text(text["wrong"])
    page.get_by_label(text["first_code"]).fill(oathtool_code(secret))
    page.get_by_role("button", name=text["confirm"]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(text["on"])
    codes = page.get_by_test_id("recovery-codes").locator("code").all_inner_texts()
    assert len(codes) == 10 and all(re.fullmatch(r"[a-z0-9]{4}(-[a-z0-9]{4})+", c) for c in codes), codes
    with page.expect_download() as info:
        page.get_by_role("link", name=text["download"]).click()
    download = info.value
    assert download.suggested_filename == f"sproutgate-{user['account']}-recovery-codes.txt"
    saved = Path(download.path()).read_text(encoding="utf-8").splitlines()
    assert [line for line in saved if line in codes] == codes
    if lang == "en-US":
        shot(page, "account_mfa_codes")
    page.get_by_role("link", name=text["saved"]).click()
    expect(page.get_by_test_id("recovery-left")).to_have_text(text["left"].format(n=10))
    if lang == "en-US":
        shot(page, "account_mfa")

    # Sign out; the password alone now leads to the second step, the app's next code opens it.
    sign_out(page, text)
    password_step(page, user["account"], text)
    if lang == "en-US":
        shot(page, "login_mfa")
    page.get_by_label(text["app_code"]).fill(oathtool_code(secret, 1))
    page.get_by_role("button", name=text["verify"]).click()
    expect(page).to_have_url(re.compile(r"/account$"))

    # Later, without the phone: the recovery-code path, folded until asked for.
    sign_out(page, text)
    password_step(page, user["account"], text)
    recovery = page.get_by_label(text["recovery_code"])
    expect(recovery).to_be_hidden()
    page.get_by_text(text["lost_phone"]).click()
    recovery.fill("aaaa-bbbb-cccc")
    page.get_by_role("button", name=text["recovery_submit"]).click()
    expect(page.locator("#f-recovery_code-error")).to_have_text(text["wrong"])
    expect(page.get_by_label(text["recovery_code"])).to_be_visible()  # still unfolded
    page.get_by_label(text["recovery_code"]).fill(codes[4].upper())
    page.get_by_role("button", name=text["recovery_submit"]).click()
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.get_by_test_id("recovery-left")).to_have_text(text["left"].format(n=9))
    # The recovery code was used up: the same one fails next time.
    sign_out(page, text)
    password_step(page, user["account"], text)
    page.get_by_text(text["lost_phone"]).click()
    page.get_by_label(text["recovery_code"]).fill(codes[4])
    page.get_by_role("button", name=text["recovery_submit"]).click()
    expect(page.locator("#f-recovery_code-error")).to_have_text(text["wrong"])
    assert site.user(user["account"])["mfa"] == {"totp": True, "passkeys": 0}
    assert PASSWORD not in page.content()


def test_the_console_shows_the_factor_and_resets_it(site, new_page):
    user = site.create_user()
    # Enrolled through the runtime API (the pages' path is the test above).
    http = site.http
    token = http.post("/api/v1/auth/sessions", json={"email": user["email"], "password": PASSWORD}).json()[
        "access_token"
    ]
    auth = {"Authorization": f"Bearer {token}"}
    secret = http.post("/api/v1/users/me/mfa/totp", json={}, headers=auth).json()["secret"]
    r = http.post("/api/v1/users/me/mfa/totp/verify", json={"code": pyotp.TOTP(secret).now()}, headers=auth)
    assert r.status_code == 200, r.text

    page = new_page()
    page.goto("/admin")
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Open the console").click()
    page.goto(f"/admin?q={user['account']}")
    row = page.locator(f"tr[data-account='{user['account']}']")
    expect(row.get_by_test_id("mfa")).to_have_text("App")
    row.get_by_role("link", name=re.compile("^Edit")).click()
    section = page.get_by_test_id("admin-mfa")
    expect(section).to_contain_text("This user has: an authenticator app.")
    shot(page, "admin_user_mfa")
    section.get_by_role("button", name="Reset second factors").click()
    expect(page.get_by_role("status")).to_have_text("The user's second factors were reset.")
    expect(page.get_by_test_id("admin-mfa")).to_contain_text("This user has no second factor.")
    assert site.user(user["account"])["mfa"] == {"totp": False, "passkeys": 0}
    assert http.get("/api/v1/users/me", headers=auth).status_code == 401  # their sessions ended
    page.goto(f"/admin?q={user['account']}")
    expect(page.locator(f"tr[data-account='{user['account']}']").get_by_test_id("mfa")).to_have_text("Off")
    page.goto("/admin/audit")
    expect(page.locator("table")).to_contain_text("second factors reset")
