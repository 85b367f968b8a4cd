"""Rows turned into detached instances (storage/sqlite_driver.py ``detached``) are in the state a
closed session leaves them, whichever path made them."""

from __future__ import annotations

from sqlalchemy import inspect
from sqlalchemy.orm import configure_mappers, make_transient_to_detached

from sproutgate.storage.models import User
from sproutgate.storage.sqlite_driver import detached


def test_a_detached_user_is_in_the_state_make_transient_to_detached_leaves():
    # sqlite_driver.detached skips make_transient_to_detached when a row holds every column of
    # a class without relationships; the instance must come out the same either way.
    configure_mappers()
    row = {column.key: None for column in User.__table__.columns}
    row.update(id="3f1f6c52-6f0e-4d0e-9d36-0a4b7f1c2e11", account="sprout", level=3)
    user = detached(User, row)
    fast = inspect(user)
    reference = User.__mapper__.class_manager.new_instance()
    reference.__dict__.update(row)
    make_transient_to_detached(reference)
    slow = inspect(reference)
    assert fast.detached and fast.key == slow.key
    assert (fast.unloaded, fast.expired_attributes, fast.committed_state, fast.modified) == (
        slow.unloaded,
        slow.expired_attributes,
        slow.committed_state,
        slow.modified,
    )
    assert user.account == "sprout" and user.level == 3
    # A row without every column still leaves the missing ones unloaded (the generic path).
    some = detached(User, {"id": row["id"], "account": "sprout"})
    partial = inspect(some)
    assert partial.detached and "email" in partial.unloaded
