"""python-escpos's printer database is parsed once into a private cache and never littered in /tmp
(kiosk/escpos_api.py)."""

from __future__ import annotations

import json
import os
import pickle
import stat
import subprocess
import sys
from importlib import resources
from pathlib import Path

import yaml

from kiosk.escpos_api import capability_cache

_CACHE_SETTINGS = {"ESCPOS_CAPABILITIES_PICKLE_DIR", "CACHE_DIRECTORY", "XDG_CACHE_HOME", "TMPDIR"}


def _database() -> Path:
    with resources.as_file(resources.files("escpos") / "capabilities.json") as path:
        return Path(path)


def test_the_cache_holds_what_python_escpos_would_parse(tmp_path: Path) -> None:
    folder = capability_cache({"CACHE_DIRECTORY": str(tmp_path / "cache")})
    assert folder == tmp_path / "cache"
    (written,) = folder.glob("*.capabilities.pickle")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    # python-escpos reads the file with PyYAML; the pickle must hold exactly that.
    expected = yaml.safe_load(_database().read_text(encoding="utf-8"))
    assert pickle.loads(written.read_bytes()) == expected
    assert not list(folder.glob(".capabilities-*"))


def test_a_stale_cache_is_written_again_and_a_fresh_one_kept(tmp_path: Path) -> None:
    folder = capability_cache({"XDG_CACHE_HOME": str(tmp_path)})
    assert folder == tmp_path / "rezip-kiosk"
    (written,) = folder.glob("*.capabilities.pickle")
    written.write_bytes(pickle.dumps({"profiles": {}}))
    os.utime(written, (0, 0))  # older than the database
    capability_cache({"XDG_CACHE_HOME": str(tmp_path)})
    assert "default" in pickle.loads(written.read_bytes())["profiles"]
    kept = {"profiles": {"default": {}, "kept": {}}}
    written.write_bytes(pickle.dumps(kept))  # newer than the database, and whole
    capability_cache({"XDG_CACHE_HOME": str(tmp_path)})
    assert pickle.loads(written.read_bytes()) == kept


def test_a_folder_others_can_write_to_is_not_used(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    assert capability_cache({"CACHE_DIRECTORY": str(shared)}) is None
    assert not list(shared.iterdir())
    unwritable = tmp_path / "file"
    unwritable.write_text("not a folder")
    assert capability_cache({"CACHE_DIRECTORY": str(unwritable / "below")}) is None


def _import_in_a_process(environment: dict[str, str]) -> dict[str, object]:
    probe = (
        "import json, kiosk.escpos_api, escpos.capabilities as c;"
        "print(json.dumps({'parsed': c.full_load, 'profiles': len(c.CAPABILITIES['profiles'])}))"
    )
    inherited = {key: value for key, value in os.environ.items() if key not in _CACHE_SETTINGS}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={**inherited, **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


def test_a_kiosk_process_parses_once_and_leaves_nothing_in_tmp(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    environment = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "TMPDIR": str(scratch)}
    profiles = len(json.loads(_database().read_text(encoding="utf-8"))["profiles"])
    first = _import_in_a_process(environment)
    second = _import_in_a_process(environment)
    assert first == {"parsed": False, "profiles": profiles}  # the kiosk wrote the pickle itself
    assert second == {"parsed": False, "profiles": profiles}
    assert list(scratch.iterdir()) == []  # python-escpos's own temporary folder went with the process


def test_without_a_cache_the_database_is_still_read_and_nothing_is_left(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    answer = _import_in_a_process({"CACHE_DIRECTORY": str(shared), "TMPDIR": str(scratch)})
    assert answer["parsed"] is True and answer["profiles"]
    assert list(scratch.iterdir()) == [] and list(shared.iterdir()) == []


def test_a_damaged_cache_is_written_again_and_the_kiosk_still_starts(tmp_path: Path) -> None:
    """A card that garbled the cached file (newer than the database, so python-escpos would trust
    it) must not stop every later start at the import."""
    folder = capability_cache({"XDG_CACHE_HOME": str(tmp_path)})
    assert folder is not None
    (written,) = folder.glob("*.capabilities.pickle")
    profiles = len(json.loads(_database().read_text(encoding="utf-8"))["profiles"])
    for damage in (b"", b"\x80\x05garbage", written.read_bytes()[:100], pickle.dumps(["not", "a", "database"])):
        written.write_bytes(damage)
        answer = _import_in_a_process({"XDG_CACHE_HOME": str(tmp_path), "TMPDIR": str(tmp_path)})
        assert answer == {"parsed": False, "profiles": profiles}, damage
        assert pickle.loads(written.read_bytes()) == yaml.safe_load(_database().read_text(encoding="utf-8"))
