"""TOML configuration files checked key by key against a schema of frozen dataclasses.

Both of the project's configuration files (the kiosk's ``kiosk.toml`` and the shop service's
``shop.toml``) are edited by hand by a technician, so every mistake must come back as one line that
names the key and says what is wrong (``backend.url: must be an https URL``), never as a traceback.
A schema is a dataclass of sections, each section a dataclass of fields whose types, defaults and
metadata (``within`` for a number's range, ``path_field`` for a file path) say what each key takes.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
import tomllib
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from kiosk.core.urls import url_problem

__all__ = [
    "ConfigError",
    "DAY",
    "within",
    "path_field",
    "read_toml",
    "build_document",
    "check_url",
    "check_identifier",
    "check_listen",
    "split_listen",
    "shown",
]

DAY = 86400.0
#: Identifiers that travel in URLs, JSON and on paper: letters, digits and a few marks.
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
_LISTEN = re.compile(r"(\[[0-9a-fA-F:]+\]|[0-9.]+|localhost):[0-9]{1,5}")

Schema = TypeVar("Schema")


class ConfigError(ValueError):
    """A configuration problem, phrased as ``key: reason``."""


def shown(value: Any) -> str:
    """A value as an error message quotes it: its repr, cut short (a 5000-character mistake is not
    a message)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def path_field() -> Any:
    """Mark a field as a filesystem path, resolved against the configuration file's folder."""
    return {"path": True}


def within(low: float, high: float) -> Any:
    """Bound a number field: seconds or a count, ``low`` to ``high`` (both included). Numbers
    without bounds of their own are positive and at most a week (durations) or a million (counts)."""
    return {"range": (low, high)}


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed document in ``path``; a file that is missing, not a regular file, not UTF-8 or
    not TOML is a ``ConfigError`` naming the file."""
    try:
        if path.exists() and not path.is_file():  # a FIFO or a folder: reading it would block or fail
            raise ConfigError(f"{path}: cannot read (not a regular file)")
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML (arrays or tables nested too deep)") from None


def build_document(
    schema: type[Schema], doc: dict[str, Any], *, base: Path, check: Callable[[Schema], None], **extra: Any
) -> Schema:
    """The ``schema`` dataclass built from a parsed document: one table per section field (a
    section without a default is required), every key checked by its type, then the whole by
    ``check`` (what spans more than a type); ``extra`` fills the schema's fields that are not
    sections (such as where the file was read from)."""
    sections = {f.name: f for f in dataclasses.fields(schema) if f.name not in extra}  # type: ignore[arg-type]
    _reject_unknown(doc, sections, prefix="")
    hints = typing.get_type_hints(schema)
    values: dict[str, Any] = {}
    for name, section_field in sections.items():
        table = doc.get(name)
        if table is None:
            if section_field.default_factory is dataclasses.MISSING:
                raise ConfigError(f"[{name}]: section is required")
            table = {}
        if not isinstance(table, dict):
            raise ConfigError(f"{name}: must be a table ([{name}])")
        values[name] = _build_section(hints[name], table, name, base)
    built = schema(**values, **extra)
    check(built)
    return built


def _build_section(cls: type, table: dict[str, Any], name: str, base: Path) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _reject_unknown(table, fields, prefix=f"{name}.")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, spec in fields.items():
        dotted = f"{name}.{key}"
        if key not in table:
            if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{dotted}: required")
            if spec.metadata.get("path") and isinstance(spec.default, Path):
                values[key] = base / spec.default
            continue
        value = _coerce(
            table[key], hints[key], dotted, may_be_empty=spec.default == "", bounds=spec.metadata.get("range")
        )
        if spec.metadata.get("path") and value is not None:
            try:
                value = base / Path(value).expanduser()
            except RuntimeError:  # "~someone" for a user this machine does not have
                raise ConfigError(f"{dotted}: {value.split('/')[0]!r} is not a home folder here") from None
        values[key] = value
    return cls(**values)


def _coerce(
    value: Any, hint: Any, key: str, *, may_be_empty: bool = False, bounds: tuple[float, float] | None = None
) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{key}: must be one of {choices}, not {shown(value)}")
        return value
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if value == "":
            return None
        return _coerce(value, inner[0], key)
    if origin is dict:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 10**12
            for k, v in value.items()
        ):
            raise ConfigError(f"{key}: must be a table of whole numbers, such as {{ DKK = 50000 }}")
        return dict(value)
    if origin is list:
        if not isinstance(value, list) or len(value) > 100 or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key}: must be a list of strings")
        return [_text(v, f"{key}[{index}]", may_be_empty=False) for index, v in enumerate(value)]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: must be true or false")
        return value
    if hint is int:
        low, high = bounds or (1, 1_000_000)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{key}: must be a whole number")
        if not low <= value <= high:
            raise ConfigError(f"{key}: must be a whole number from {low:g} to {high:g}, not {value}")
        return value
    if hint is float:
        low, high = bounds or (0.001, 7 * DAY)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise ConfigError(f"{key}: must be a number of seconds")
        if not low <= value <= high or value <= 0 < low:
            raise ConfigError(f"{key}: must be a number of seconds from {low:g} to {high:g}, not {value:g}")
        return float(value)
    if hint in (str, Path):
        return _text(value, key, may_be_empty=may_be_empty)
    raise ConfigError(f"{key}: unsupported type {hint!r}")  # a schema bug, not a user error


def _text(value: Any, key: str, *, may_be_empty: bool) -> str:
    """A string a person wrote: bounded, with no control characters (a NUL in a path, an escape)."""
    if not isinstance(value, str) or not (value or may_be_empty):
        raise ConfigError(f"{key}: must be a non-empty string")
    if len(value) > 1024 or any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in value):
        raise ConfigError(f"{key}: must be one line of at most 1024 characters, without control characters")
    return value


def _reject_unknown(table: dict[str, Any], known: dict[str, Any], *, prefix: str) -> None:
    for key in table:
        if key not in known:
            raise ConfigError(f"{prefix}{key}: unknown key (known: {', '.join(sorted(known))})")


def check_url(key: str, url: str) -> None:
    """An https URL with a host; plain http only for a loopback host (the stand-ins)."""
    problem = url_problem(url)
    if problem is not None:
        raise ConfigError(f"{key}: {problem}")


def check_identifier(key: str, value: str) -> None:
    """An identifier that travels in URLs, JSON and on paper."""
    if not _IDENTIFIER.fullmatch(value):
        raise ConfigError(f"{key}: must be 1-128 letters, digits or . _ : - (it travels in URLs and on paper)")


def split_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) as the host to bind and the port."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def check_listen(key: str, listen: str, *, example: str) -> None:
    """An address to listen on: an IP literal (or ``localhost``) and a port, never a name to resolve."""
    if _LISTEN.fullmatch(listen):
        host, port = split_listen(listen)
        if _ip_or_localhost(host) and port <= 65535:
            return
    raise ConfigError(f"{key}: must be IP:port (or localhost:port) such as {example}, not {shown(listen)}")


def _ip_or_localhost(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
