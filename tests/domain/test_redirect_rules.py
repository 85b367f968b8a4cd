"""The redirect allow-list rule (domain/accounts/rules.py), without HTTP: issue 11 item 6."""

from __future__ import annotations

import pytest

from sproutgate.domain.accounts.rules import allowed_redirect, parse_redirect_entries


def targets(*entries: str):
    parsed, _ = parse_redirect_entries(list(entries))
    return parsed


@pytest.mark.parametrize(
    "candidate",
    [
        "https://app.example.com.evil.example/x",  # look-alike host sharing the prefix
        "https://app.example.com@evil.example/",  # userinfo
        "https://user:pw@app.example.com/",  # userinfo, even on the right host
        "http://app.example.com/",  # other scheme
        "https://app.example.com:8443/",  # other port
        "https://app.example.com\\@evil.example/",  # backslash (browsers read it as /)
        "https://app.example.com/%2f%2fevil.example",  # encoded separators
        "https://app.example.com/ x",  # white space
        "javascript:alert(1)",
        "//evil.example/",
        "/relative",
        "",
    ],
)
def test_prefix_entry_without_path_refuses_other_origins(candidate: str) -> None:
    assert allowed_redirect(candidate, targets("https://app.example.com*")) is None


def test_prefix_entry_without_path_allows_its_origin_and_warns() -> None:
    parsed, warnings = parse_redirect_entries(["https://app.example.com*"])
    assert allowed_redirect("https://app.example.com/x?y=1#z", parsed) == "https://app.example.com/x?y=1#z"
    assert allowed_redirect("HTTPS://App.Example.COM:443/x", parsed) == "https://app.example.com/x"
    assert len(warnings) == 1 and "no path" in warnings[0]


def test_paths_match_by_whole_segments_after_normalizing() -> None:
    allow = targets("https://app.example.com/callback*")
    assert allowed_redirect("https://app.example.com/callback", allow) == "https://app.example.com/callback"
    assert allowed_redirect("https://app.example.com/callback/x?s=1", allow)
    assert allowed_redirect("https://app.example.com/callbackevil", allow) is None
    assert allowed_redirect("https://app.example.com/callback/../admin", allow) is None
    assert allowed_redirect("https://app.example.com/callback/%2e%2e/admin", allow) is None
    assert allowed_redirect("https://app.example.com/other/../callback/ok", allow) == (
        "https://app.example.com/callback/ok"
    )


def test_exact_entries_match_only_their_url() -> None:
    allow = targets("https://app.example.com/done")
    assert allowed_redirect("https://app.example.com/done", allow) == "https://app.example.com/done"
    assert allowed_redirect("https://app.example.com/done/x", allow) is None
    assert allowed_redirect("https://app.example.com/done?next=evil", allow) is None


def test_unusable_entries_are_reported_and_ignored() -> None:
    parsed, warnings = parse_redirect_entries(["not a url", "ftp://files.example/*", "https://a@b.example/*"])
    assert parsed == [] and len(warnings) == 3


def test_internationalized_hosts_compare_in_one_form() -> None:
    allow = targets("https://bücher.example/app*")
    assert (
        allowed_redirect("https://xn--bcher-kva.example/app/1", allow)
        == "https://xn--bcher-kva.example/app/1"
    )
    assert allowed_redirect("https://bücher.example/app/1", allow) == "https://xn--bcher-kva.example/app/1"
