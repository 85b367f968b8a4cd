"""domain.accounts.rules.secondaries_after_primary_change: what replacing a primary address does
to the old one, for every face (admin API, console, importer)."""

from __future__ import annotations

from sproutgate.domain.accounts.rules import secondaries_after_primary_change as after

OLD, NEW = "old@example.com", "new@example.com"


def test_the_old_primary_address_is_dropped_by_default():
    assert after(OLD, ["a@example.com"], NEW) == ["a@example.com"]


def test_the_old_primary_address_stays_when_the_change_lists_it():
    assert after(OLD, ["a@example.com"], NEW, keep=["a@example.com", OLD]) == ["a@example.com", OLD]


def test_a_promoted_secondary_address_is_no_longer_a_secondary_one():
    assert after(OLD, ["a@example.com", NEW], NEW) == ["a@example.com"]
    assert after(OLD, [NEW], NEW, keep=[NEW, OLD]) == [OLD]


def test_the_same_address_changes_nothing():
    assert after(OLD, ["a@example.com"], OLD, keep=[OLD]) == ["a@example.com"]


def test_listing_other_addresses_does_not_keep_the_old_one():
    assert after(OLD, [], NEW, keep=["b@example.com"]) == []
