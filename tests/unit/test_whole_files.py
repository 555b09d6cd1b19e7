"""``write_whole``: a reader of the file sees the old content or the new, never a part of either."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kiosk import whole_files
from kiosk.whole_files import write_whole


def test_the_new_content_is_renamed_over_the_old(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "deep" / "001-result.json"
    write_whole(target, b'{"old": true}\n')
    seen_during: list[bytes] = []
    real_replace = os.replace

    def replace(source: str | Path, destination: str | Path) -> None:
        seen_during.append(Path(destination).read_bytes())  # what a reader finds until the rename
        assert Path(source).read_bytes() == b'{"new": true}\n'
        real_replace(source, destination)

    monkeypatch.setattr(whole_files.os, "replace", replace)
    write_whole(target, b'{"new": true}\n')
    assert seen_during == [b'{"old": true}\n']
    assert target.read_bytes() == b'{"new": true}\n'
    assert sorted(p.name for p in target.parent.iterdir()) == ["001-result.json"]
