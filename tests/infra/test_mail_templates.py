"""The mail templates: every kind in both languages renders completely, the operator's
directory comes first (a file at a time), and a broken override falls back to ours."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from sproutgate.i18n import LANGS
from sproutgate.infra.mail_templating import PACKAGED_DIR, JinjaMailTemplates

KINDS = sorted(p.stem for p in (PACKAGED_DIR / "en").glob("*.txt") if not p.stem.startswith("_"))
VALUES = {
    "code": "123456",
    "minutes": 1,
    "link": "https://id.example/x",
    "email": "a@example.com",
    "old_email": "old@example.com",
    "old_kept": False,
    "account": "alice",
    "at": "2026-11-30 10:00 UTC",
    "until": "2026-12-30 10:00 UTC",
    "ip": "192.0.2.1",
    "user_agent": "Agent/1",
    "by_admin": False,
    "left": 2,
    "name": "Phone passkey",
    "session_created_at": "2026-11-29 09:00 UTC",
    "session_ip": "198.51.100.2",
    "session_user_agent": "Phone/3",
}


def test_both_languages_ship_the_same_templates():
    for lang in LANGS:
        assert sorted(p.name for p in (PACKAGED_DIR / lang).glob("*.txt")) == sorted(
            p.name for p in (PACKAGED_DIR / "en").glob("*.txt")
        )
    assert {
        "new_sign_in",
        "password_changed",
        "primary_changed",
        "session_revoked",
        "account_disabled",
    } <= set(KINDS)


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_template_renders_completely(kind, lang):
    text = JinjaMailTemplates("Sprout Test").render(kind, lang, VALUES)
    assert "Sprout Test" in text.subject and "\n" not in text.subject
    assert text.text_body and text.html_body is None
    for leftover in ("{{", "}}", "{%", "None"):
        assert leftover not in text.subject + text.text_body, (kind, lang)
    if lang == "zh-CN":
        assert re.search(r"[\u4e00-\u9fff]", text.subject)
    if kind in ("new_sign_in", "password_changed", "secondary_added", "mfa_enabled"):
        assert "192.0.2.1" in text.text_body and "Agent/1" in text.text_body


def test_singular_and_plural_minutes():
    one = JinjaMailTemplates("S").render("signup_code", "en", {**VALUES, "minutes": 1}).text_body
    many = JinjaMailTemplates("S").render("signup_code", "en", {**VALUES, "minutes": 10}).text_body
    assert "valid for 1 minute." in one and "valid for 10 minutes." in many


def test_an_unknown_language_falls_back_to_the_default():
    assert JinjaMailTemplates("S").render("signup_code", "fr", VALUES).subject.startswith("【S】")


def test_an_override_directory_is_searched_first_and_falls_back_when_broken(tmp_path: Path, caplog):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "signup_code.txt").write_text(
        "{% block subject %}Code {{ code }} for {{ product }}{% endblock %}{% block body %}Hi{% endblock %}"
    )
    (tmp_path / "en" / "reset_code.txt").write_text("{% block subject %}{{ broken( {% endblock %}")
    (tmp_path / "en" / "signup_held.txt").write_text("{% block subject %}no body{% endblock %}")
    templates = JinjaMailTemplates("Acme", tmp_path)
    assert templates.render("signup_code", "en", VALUES).subject == "Code 123456 for Acme"
    assert templates.render("signup_code", "zh-CN", VALUES).subject.startswith("【Acme】")  # not overridden
    with caplog.at_level(logging.ERROR):
        assert (
            templates.render("reset_code", "en", VALUES).subject
            == "[Acme] Your password reset code is 123456"
        )
        assert (
            templates.render("signup_held", "en", VALUES).subject == "[Acme] This address cannot be used yet"
        )
    assert "reset_code.txt" in caplog.text and "signup_held.txt" in caplog.text


def test_a_missing_override_directory_is_only_a_warning(tmp_path: Path, caplog):
    with caplog.at_level(logging.WARNING):
        templates = JinjaMailTemplates("S", tmp_path / "nowhere")
    assert "not a directory" in caplog.text
    assert templates.render("signup_code", "en", VALUES).subject == "[S] Your sign-up code is 123456"
