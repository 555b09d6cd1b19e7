"""Files holding a token or a private key: readable by their owner only (mode 0600), like ssh keeps
them. Reading refuses a looser file; writing never lets one exist, not even for a moment."""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["SecretFileError", "read_secret_file", "write_secret_file", "private_directory"]


class SecretFileError(OSError):
    """A token or key file is missing, empty or readable by others."""


#: A token goes into an HTTP header: printable ASCII, no spaces; generous for any real token.
_MAX_TOKEN_BYTES = 4096


def read_secret_file(path: Path) -> str:
    """Read a token file, refusing one that group or others can read (like ssh does), and one whose
    content could not go into an ``Authorization`` header as it is. The messages never quote the
    content: a token must not reach a terminal or a log, not even a broken one."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO or a device would block or never end
            raise SecretFileError(f"{path}: the token file is not a regular file")
        with path.open("rb") as handle:
            raw = handle.read(_MAX_TOKEN_BYTES + 1)
    except (OSError, ValueError) as exc:  # ValueError: a path with a NUL byte
        if isinstance(exc, SecretFileError):
            raise
        raise SecretFileError(f"{path}: cannot read the token file ({getattr(exc, 'strerror', None) or exc})") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretFileError(f"{path}: token file must have mode 0600 (run: chmod 600 {path})")
    if len(raw) > _MAX_TOKEN_BYTES:
        raise SecretFileError(f"{path}: token file is larger than {_MAX_TOKEN_BYTES} bytes; is it the right file?")
    token = raw.strip(b" \t\r\n")
    if not token:
        raise SecretFileError(f"{path}: token file is empty")
    if any(byte > 0x7E for byte in token):
        raise SecretFileError(f"{path}: token file holds bytes that are not ASCII; write the token alone, as issued")
    if any(byte < 0x21 for byte in token):
        raise SecretFileError(
            f"{path}: token file holds a line break, space or control character inside the "
            "token; it must hold the token alone, on one line"
        )
    return token.decode("ascii")


def write_secret_file(path: Path, data: bytes, *, replace: bool = True) -> None:
    """Write ``data`` to ``path`` with mode 0600 from the first byte; ``replace=False`` refuses to
    overwrite (for keys, which must never be lost)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through O_CREAT


def private_directory(path: Path) -> Path:
    """``path`` as a folder only its owner can enter (0700): the kiosk's data, journal and logo
    cache live there, so nothing written inside is readable by others whatever its own mode."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_uid == os.geteuid():
        os.chmod(path, 0o700)
    return path
