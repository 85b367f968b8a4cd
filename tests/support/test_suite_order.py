"""The order in which `make test` hands out the test files (support/suite_order.py): every
file it names still exists, so a renamed long file does not silently drop to the end of the run."""

from __future__ import annotations

from pathlib import Path

from support.suite_order import LONG_FILES, LONG_FOLDERS

TESTS = Path(__file__).resolve().parents[1]


def test_every_long_file_named_for_the_order_exists():
    missing = [path for path in LONG_FILES if not (TESTS / path).is_file()]
    assert not missing, missing
    assert all((TESTS / folder).is_dir() for folder in LONG_FOLDERS)
    assert len(set(LONG_FILES)) == len(LONG_FILES)
