"""Shared by the release tests (make test-release): the packages built once per run, releases derived
from them, and Debian bookworm roots copied from the debootstrap root cached under .cache/."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kiosk import __version__

REPO = Path(__file__).resolve().parents[2]
BASE_ROOT = REPO / ".cache" / "bookworm-root"
UPSTREAM = __version__
VERSION = f"{UPSTREAM}-1"


def _needs(condition: bool, reason: str) -> None:
    if not condition:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def release_tools() -> None:
    _needs(os.geteuid() == 0, "the release tests install packages into a root: run them as root")
    for tool in ("dpkg-deb", "debootstrap", "chroot"):
        _needs(shutil.which(tool) is not None, f"{tool} is not installed (apt-get install debootstrap)")


@dataclass(frozen=True)
class Release:
    """A release's two packages: the payload (rezip-kiosk-UPSTREAM) and the system part."""

    upstream: str
    payload: Path
    system: Path


@pytest.fixture(scope="session")
def debs(release_tools: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Release]:
    """The amd64 and arm64 packages built by packaging/build-deb (gzip: quick to build), or those
    already in $RELEASE_DEBS (a folder make deb filled) when it is set."""
    given = os.environ.get("RELEASE_DEBS")
    out = Path(given) if given else tmp_path_factory.mktemp("debs")
    built = {}
    for arch in ("amd64", "arm64"):
        result = (
            subprocess.CompletedProcess([], 0, "", "")
            if given
            else subprocess.run(
                [str(REPO / ".venv/bin/python"), str(REPO / "packaging/build-deb"), arch, "--compress", "gzip"]
                + ["--out", str(out)],
                capture_output=True,
                text=True,
            )
        )
        assert result.returncode == 0, result.stderr[-2000:]
        built[arch] = Release(
            UPSTREAM,
            out / f"rezip-kiosk-{UPSTREAM}_{VERSION}_{arch}.deb",
            out / f"rezip-kiosk_{VERSION}_{arch}.deb",
        )
    return built


def derive(release: Release, upstream: str, out: Path, *, broken: bool = False) -> Release:
    """Another release made from a built one: the same files under /opt/rezip-kiosk/UPSTREAM (the
    virtualenv is relocatable) with the version changed; ``broken``: its kiosk exits at once, as a
    release that cannot start would."""
    version = f"{upstream}-1"
    made = []
    for deb, is_payload in ((release.payload, True), (release.system, False)):
        tree = out / f"tree-{upstream}-{deb.name}"
        shutil.rmtree(tree, ignore_errors=True)
        subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
        control = (tree / "DEBIAN/control").read_text()
        control = control.replace(f"Version: {VERSION}", f"Version: {version}")
        control = control.replace(
            f"rezip-kiosk-{release.upstream} (= {VERSION})", f"rezip-kiosk-{upstream} (= {version})"
        )
        if is_payload:
            control = control.replace(f"Package: rezip-kiosk-{release.upstream}", f"Package: rezip-kiosk-{upstream}")
            (tree / "opt/rezip-kiosk" / release.upstream).rename(tree / "opt/rezip-kiosk" / upstream)
            doc = tree / "usr/share/doc"
            (doc / f"rezip-kiosk-{release.upstream}").rename(doc / f"rezip-kiosk-{upstream}")
            (tree / "usr/share/lintian/overrides" / f"rezip-kiosk-{release.upstream}").unlink()
            if broken:
                (tree / "opt/rezip-kiosk" / upstream / ".venv/bin/kiosk").write_text("#!/bin/sh\nexit 1\n")
            (tree / "DEBIAN/md5sums").unlink()
        else:
            for script in ("postinst",):
                path = tree / "DEBIAN" / script
                path.write_text(path.read_text().replace(f"release={release.upstream}", f"release={upstream}"))
        (tree / "DEBIAN/control").write_text(control)
        name = f"rezip-kiosk-{upstream}" if is_payload else "rezip-kiosk"
        target = out / f"{name}_{version}_{deb.name.rsplit('_', 1)[1]}"
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "-b", str(tree), str(target)],
            check=True,
            capture_output=True,
        )
        made.append(target)
        shutil.rmtree(tree)
    return Release(upstream, made[0], made[1])


@pytest.fixture(scope="session")
def base_root(release_tools: None) -> Path:
    """The bookworm root, made once by debootstrap (packaging/bookworm-root) and cached."""
    result = subprocess.run([str(REPO / "packaging/bookworm-root"), str(BASE_ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return BASE_ROOT


class Root:
    """A copy of the bookworm root to install into; commands run in it through chroot (no service
    starts: systemd is not running there)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def run(self, *command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["chroot", str(self.path), *command],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", **(env or {})},
            timeout=600,
        )

    def put(self, deb: Path) -> str:
        shutil.copy(deb, self.path / "tmp" / deb.name)
        return f"/tmp/{deb.name}"

    def dpkg(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return self.run("dpkg", *args, env=env)

    def install(self, *releases: Release) -> None:
        files = [self.put(deb) for release in releases for deb in (release.payload, release.system)]
        result = self.dpkg("-i", *files)
        assert result.returncode == 0, result.stdout + result.stderr

    def uid(self, user: str) -> int:
        for line in (self.path / "etc/passwd").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == user:
                return int(fields[2])
        raise KeyError(user)


@pytest.fixture
def root(base_root: Path, tmp_path: Path) -> Iterator[Root]:
    copy = tmp_path / "root"
    subprocess.run(["cp", "-a", str(base_root), str(copy)], check=True)
    yield Root(copy)
    subprocess.run(["rm", "-rf", str(copy)], check=False)


def members(deb: Path, out: Path) -> Path:
    """The package's files, unpacked into ``out``."""
    subprocess.run(["dpkg-deb", "-x", str(deb), str(out)], check=True)
    return out


__all__ = ["Release", "Root", "derive", "members", "REPO", "UPSTREAM", "VERSION"]
