"""``private_files.loose_modes``, what every start runs on the data dir of an older install:
others' access removed from what the service user owns, what it cannot change named with the
command to run, the group's access named and kept, symbolic links never followed."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from sproutgate.private_files import loose_modes


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_others_access_is_removed_the_groups_kept_and_links_left_alone(tmp_path):
    data = tmp_path / "data"
    (data / "keys").mkdir(parents=True)
    (data / "keys").chmod(0o755)
    db, key, private = data / "sproutgate.db", data / "keys" / "jwt.pem", data / "private.json"
    for path, m in ((db, 0o644), (key, 0o604), (private, 0o600)):
        path.write_text("x")
        path.chmod(m)
    data.chmod(0o755)
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("not ours to judge")
    outside.chmod(0o644)
    (data / "link").symlink_to(outside)

    found = loose_modes(data)

    assert (mode(data), mode(db), mode(key), mode(private)) == (0o750, 0o640, 0o600, 0o600)
    assert mode(outside) == 0o644  # the link's target is not the data dir's
    assert {p.name for p, _, _ in found.tightened} == {"data", "keys", "sproutgate.db", "jwt.pem"}
    assert {p.name for p, _ in found.open_to_group} == {"data", "keys", "sproutgate.db"}
    assert found.open_to_others == []
    removed, group = found.warnings()
    assert f"{db} (644 -> 640)" in removed and f"{key} (604 -> 600)" in removed
    assert group.endswith(f"chmod -R go-rwx {data.resolve()}") and "private.json" not in group

    # Once the command ran, nothing is left to say.
    subprocess.run(["chmod", "-R", "go-rwx", str(data.resolve())], check=True)  # as the warning says
    assert loose_modes(data).warnings() == []
    assert loose_modes(tmp_path / "missing").warnings() == []


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_what_another_user_owns_is_named_with_the_command_not_changed(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    data.chmod(0o700)
    theirs = data / "email.json"
    theirs.write_text("{}")
    theirs.chmod(0o644)
    os.chown(theirs, 65534, 65534)

    found = loose_modes(data)

    assert mode(theirs) == 0o644
    assert found.open_to_others == [(theirs, 0o644)] and found.tightened == []
    others = next(line for line in found.warnings() if "not ours to change" in line)
    assert f"{theirs} (644)" in others and others.endswith(f"run: chmod o-rwx {theirs}")
