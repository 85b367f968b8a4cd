"""docs/oidc.md prints the code the relying-party tests run: every fenced block after a
``<!-- snippet: FILE[#REGION] -->`` line must be exactly that file's text (or the text between
its ``--8<-- [start:REGION]`` and ``--8<-- [end:REGION]`` lines)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "oidc.md"
MARKED = re.compile(
    r"<!-- snippet: (?P<file>[^#\s]+)(?:#(?P<region>[\w-]+))? -->\n```\w*\n(?P<code>.*?)```", re.S
)


def region(path: Path, name: str | None) -> str:
    text = path.read_text()
    if name is None:
        return text
    marks = rf"^[^\n]*--8<-- \[start:{name}\]\n(.*?)^[^\n]*--8<-- \[end:{name}\]"
    found = re.search(marks, text, re.S | re.M)
    assert found, f"{path} has no region {name}"
    return found.group(1)


SNIPPETS = [(m["file"], m["region"], m["code"]) for m in MARKED.finditer(DOC.read_text())]


def test_the_page_marks_its_snippets() -> None:
    assert {file for file, _, _ in SNIPPETS} >= {
        "tests/rp/apache/sproutgate-app.conf",
        "tests/rp/spa/app.js",
        "tests/rp/native_app.py",
        "tests/rp/service_client.py",
    }


@pytest.mark.parametrize(("file", "name", "code"), SNIPPETS, ids=[f"{f}#{r}" for f, r, _ in SNIPPETS])
def test_each_snippet_is_the_tested_code(file: str, name: str | None, code: str) -> None:
    assert code.rstrip("\n") == region(ROOT / file, name).rstrip("\n")
