"""Files holding a token or a private key: readable by their owner only (mode 0600), like ssh keeps
them. Reading refuses a looser file; writing never lets one exist, not even for a moment."""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["SecretFileError", "read_secret_file", "write_secret_file"]


class SecretFileError(OSError):
    """A token or key file is missing, empty or readable by others."""


def read_secret_file(path: Path) -> str:
    """Read a token file, refusing one that group or others can read (like ssh does)."""
    try:
        info = path.stat()
        text = path.read_text("utf-8").strip()
    except OSError as exc:
        raise SecretFileError(f"{path}: cannot read the token file ({exc.strerror or exc})") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretFileError(f"{path}: token file must have mode 0600 (run: chmod 600 {path})")
    if not text:
        raise SecretFileError(f"{path}: token file is empty")
    return text


def write_secret_file(path: Path, data: bytes, *, replace: bool = True) -> None:
    """Write ``data`` to ``path`` with mode 0600 from the first byte; ``replace=False`` refuses to
    overwrite (for keys, which must never be lost)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through O_CREAT
