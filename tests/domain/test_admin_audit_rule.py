"""domain.admin.rules: what counts as a change of a user, and the one audit record of it."""

from __future__ import annotations

from sproutgate.domain.admin.rules import audit_details, changed_fields

STORED = {
    "account": "alice",
    "email": "alice@example.com",
    "username": "Alice",
    "level": 1,
    "sprout_coins": 5,
    "secondary_emails": ["a@example.com", "b@example.com"],
    "phone": None,
    "avatar_url": None,
    "bio": None,
    "disabled": False,
    "role": "user",
}


def test_only_values_that_differ_are_changes():
    wanted = {"level": 1, "sprout_coins": 7, "role": "user", "disabled": False, "account": "alice"}
    assert changed_fields(wanted, STORED) == {"sprout_coins": 7}


def test_secondary_addresses_are_compared_as_a_set():
    assert changed_fields({"secondary_emails": ["b@example.com", "a@example.com"]}, STORED) == {}
    assert changed_fields({"secondary_emails": ["a@example.com"]}, STORED) == {
        "secondary_emails": ["a@example.com"]
    }


def test_a_new_password_is_always_a_change_and_never_audited_by_value():
    changed = changed_fields({"password": "$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaA"}, STORED)
    assert list(changed) == ["password"]
    details = audit_details(changed)
    assert details == {"fields": ["password"]}
    assert "argon2" not in repr(details)


def test_the_record_lists_fields_in_a_fixed_order_with_the_values_worth_keeping():
    changed = {"role": "admin", "bio": "hi", "password": "hash", "sprout_coins": 7, "email": "n@example.com"}
    assert audit_details(changed) == {
        "fields": ["email", "password", "sprout_coins", "bio", "role"],
        "values": {"email": "n@example.com", "sprout_coins": 7, "role": "admin"},
    }


def test_nothing_changed_is_an_empty_record():
    assert audit_details(changed_fields({"level": 1}, STORED)) == {"fields": []}
