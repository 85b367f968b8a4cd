"""Who may read /metrics (domain.monitoring.rules.may_scrape), as a pure rule."""

from __future__ import annotations

from sproutgate.domain.monitoring.rules import may_scrape

TOKEN = "scrape-token-0123456789abcdef"


def test_without_a_token_only_local_clients_may_scrape():
    assert may_scrape("", None, local_client=True)
    assert not may_scrape("", None, local_client=False)
    assert not may_scrape("", "anything", local_client=False)  # a token is no use when none is set


def test_with_a_token_only_its_bearer_may_scrape_local_or_not():
    assert may_scrape(TOKEN, TOKEN, local_client=False)
    assert may_scrape(TOKEN, TOKEN, local_client=True)
    for presented in (None, "", TOKEN[:-1], TOKEN + "x", TOKEN.upper(), " " + TOKEN):
        assert not may_scrape(TOKEN, presented, local_client=True), presented
