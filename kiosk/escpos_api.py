"""The one place that touches python-escpos beyond its public interface.

Its public methods decide for us what a job holds (``text()`` and ``ln()`` select code pages behind
our back, ``close()`` drains a vanished serial port), so the kiosk writes the bytes it has laid out
itself and reads status bytes itself, through three private members: ``_raw`` (write bytes as they
are), ``_read`` (read the answer to a status query) and ``_device`` (the transport's own handle, to
close it first when the device has gone). They are used here only, and python-escpos is pinned to
the minor version this was written against (pyproject.toml: 3.1). The capability database
(``profile_data``) is public and read here too, so the paper and the simulated printer share one
table of code pages.

python-escpos reads that database when it is imported: from a pickle in
``$ESCPOS_CAPABILITIES_PICKLE_DIR`` if one is there and newer than its ``capabilities.json``,
otherwise by parsing the JSON with PyYAML into a fresh temporary directory, which it never removes
(0.13 s and 2-3 MB of a kiosk's memory on every start, and one directory left in /tmp per
process). So the kiosk imports python-escpos only through this module, which first writes that
pickle once, whole or not at all, into a private cache directory (systemd's ``CacheDirectory=``,
else ``$XDG_CACHE_HOME/rezip-kiosk``); an unfinished or foreign file is never read, and a damaged
one is written again.
"""

from __future__ import annotations

import atexit
import codecs
import json
import os
import pickle
import platform
import shutil
import stat
import sys
import tempfile
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "write_raw",
    "read_answer",
    "raw_device",
    "profile_data",
    "code_pages",
    "capability_cache",
    "Escpos",
    "Dummy",
    "escpos_printer",
    "EscposError",
]

_PICKLE_DIR = "ESCPOS_CAPABILITIES_PICKLE_DIR"


def capability_cache(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The private directory that holds python-escpos's capability pickle, written here when it is
    missing or older than the database; None when no such directory can be had."""
    base = environ.get("CACHE_DIRECTORY") or str(
        Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rezip-kiosk"
    )
    folder = Path(base.split(":")[0])  # systemd lists several directories with ':'
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.stat()
        if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o022:
            return None  # someone else could plant a pickle here
        source = resources.files("escpos") / "capabilities.json"
        with resources.as_file(source) as database:
            target = folder / f"{platform.python_version()}.capabilities.pickle"
            if not _readable(target) or target.stat().st_mtime < database.stat().st_mtime:
                data = json.loads(database.read_text(encoding="utf-8"))  # JSON is the YAML it parses
                handle, partial = tempfile.mkstemp(dir=folder, prefix=".capabilities-")
                try:
                    with os.fdopen(handle, "wb") as out:
                        pickle.dump(data, out, protocol=pickle.HIGHEST_PROTOCOL)
                        out.flush()
                        os.fsync(out.fileno())
                    os.replace(partial, target)
                except BaseException:
                    os.unlink(partial)
                    raise
    except (OSError, ValueError):
        return None
    return folder


def _readable(pickled: Path) -> bool:
    """Whether the cached database is one python-escpos can use: a card that lost or garbled the
    file would otherwise stop every later start of the kiosk at the import."""
    try:
        data = pickle.loads(pickled.read_bytes())
    except Exception:  # missing, or damaged: a pickle fails in many ways (UnpicklingError, EOFError, ...)
        return False
    return isinstance(data, dict) and isinstance(data.get("profiles"), dict) and "default" in data["profiles"]


def _import_escpos() -> None:
    """Import python-escpos with the cache in place. It also makes a temporary directory on import
    whatever the environment says; that one is made inside a directory of ours, removed when this
    process ends, as is the pickle when no cache could be had. The environment is left as it was:
    a child process finds the cache itself."""
    if "escpos.capabilities" in sys.modules:
        return
    scratch = tempfile.mkdtemp(prefix="kiosk-escpos-")
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    given = os.environ.get(_PICKLE_DIR)
    os.environ[_PICKLE_DIR] = given or str(capability_cache() or scratch)
    previous, tempfile.tempdir = tempfile.tempdir, scratch
    try:
        import escpos.capabilities  # noqa: F401
    finally:
        tempfile.tempdir = previous
        if given is None:
            del os.environ[_PICKLE_DIR]


_import_escpos()

from escpos import printer as escpos_printer  # noqa: E402  (after _import_escpos)
from escpos.escpos import Escpos  # noqa: E402
from escpos.exceptions import Error as EscposError  # noqa: E402
from escpos.printer import Dummy  # noqa: E402


def write_raw(printer: Escpos, data: bytes) -> None:
    """Send ``data`` exactly as it is."""
    printer._raw(data)


def read_answer(printer: Escpos) -> bytes:
    """The bytes a printer answered to a status query (network and USB transports)."""
    return bytes(printer._read() or b"")


def raw_device(printer: Escpos) -> Any:
    """The transport's own handle (a file, a socket, a serial port), or None."""
    return getattr(printer, "_device", None)


@lru_cache(maxsize=8)
def profile_data(profile: str) -> dict[str, Any]:
    """The profile's entry in python-escpos's capability database."""
    data: dict[str, Any] = Dummy(profile=profile).profile.profile_data
    return data


@lru_cache(maxsize=8)
def code_pages(profile: str) -> dict[int, str]:
    """ESC t number -> Python codec, for the profile's code pages Python can encode."""
    pages = {}
    for number, name in sorted(profile_data(profile).get("codePages", {}).items(), key=lambda kv: int(kv[0])):
        try:
            pages[int(number)] = codecs.lookup(name.replace("_", "-")).name
        except LookupError:
            continue
    return pages
