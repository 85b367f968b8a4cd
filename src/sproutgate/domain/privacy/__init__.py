"""Leaving, and taking the data along: deleting an account (by its owner, after re-entering the
password, or by an administrator: one rule path), the hold that keeps a deleted account's
addresses and account name from being taken for a while, and the export of everything stored
about a user.

``service.py`` the operations (one transaction each), ``rules.py`` what is exported and how
identifiers are held (pure), ``holds.py`` the hold check the account rules call wherever an
address or a name is taken; its one error, a wrong password, is
``accounts.errors.WrongPassword``."""
