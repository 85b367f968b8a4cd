"""Who may read /metrics (domain.monitoring.rules.may_scrape), as a pure rule."""

from __future__ import annotations

from sproutgate.domain.monitoring.rules import may_scrape

TOKEN = "scrape-token-0123456789abcdef"


def test_without_a_token_only_local_clients_may_scrape():
    assert may_scrape("", None, local_client=True, loopback_name=True)
    assert not may_scrape("", None, local_client=False, loopback_name=True)
    assert not may_scrape(
        "", "anything", local_client=False, loopback_name=True
    )  # a token is no use when none is set


def test_with_a_token_only_its_bearer_may_scrape_local_or_not():
    assert may_scrape(TOKEN, TOKEN, local_client=False, loopback_name=True)
    assert may_scrape(TOKEN, TOKEN, local_client=True, loopback_name=True)
    for presented in (None, "", TOKEN[:-1], TOKEN + "x", TOKEN.upper(), " " + TOKEN):
        assert not may_scrape(TOKEN, presented, local_client=True, loopback_name=True), presented


def test_without_a_token_a_local_client_under_another_name_may_not_scrape():
    # DNS rebinding: a browser on the host, a page whose name resolves to 127.0.0.1.
    assert not may_scrape("", None, local_client=True, loopback_name=False)
    assert may_scrape(TOKEN, TOKEN, local_client=True, loopback_name=False)  # the token is enough
