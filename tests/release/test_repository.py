"""make repo: the signed apt repository. A kiosk installed from the package file trusts the repository
through the key the package ships (signed-by), takes a canary release from it with apt, refuses the
repository once its index is tampered with, and its unattended-upgrades origin matches ours.
scripts/install-pi writes the repository's source on the installed kiosk."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.release.conftest import REPO, Release, Root, derive

pytestmark = pytest.mark.release


def make_repo(releases: list[Release], out: Path, debs: Path) -> None:
    debs.mkdir()
    for release in releases:
        for deb in (release.payload, release.system):
            shutil.copy(deb, debs / deb.name)
    result = subprocess.run(
        [str(REPO / "packaging/make-repo"), str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "DEBS": str(debs)},
    )
    assert result.returncode == 0, result.stderr


def test_a_kiosk_upgrades_from_the_signed_repository_and_refuses_a_tampered_one(
    root: Root, debs: dict[str, Release], tmp_path: Path
) -> None:
    if shutil.which("reprepro") is None:
        pytest.skip("reprepro is not installed (apt-get install reprepro)")
    first = debs["amd64"]
    canary = derive(first, "9.9.0", tmp_path)
    root.install(first)
    # Only our repository: nothing in this test may reach a network.
    (root.path / "etc/apt/sources.list").unlink(missing_ok=True)
    # scripts/install-pi on a kiosk with the package: our repository (canary suite) and the screen.
    setup = subprocess.run(
        [str(REPO / "scripts/install-pi"), "--root", str(root.path), "--repo", "file:/srv/repo"]
        + ["--suite", "bookworm-canary", "--no-apt"],
        capture_output=True,
        text=True,
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert (root.path / "etc/systemd/system/graphical.target.wants/rezip-kiosk-screen.service").is_symlink()
    make_repo([canary], root.path / "srv/repo", tmp_path / "debs")

    update = root.run("apt-get", "update")
    assert update.returncode == 0 and "NO_PUBKEY" not in update.stderr, update.stdout + update.stderr
    assert "o=RE-ZIP,a=bookworm-canary,n=bookworm-canary,l=RE-ZIP kiosk" in root.run("apt-cache", "policy").stdout
    assert "Candidate: 9.9.0-1" in root.run("apt-cache", "policy", "rezip-kiosk").stdout
    upgrade = root.run("apt-get", "install", "-y", "--no-install-recommends", "rezip-kiosk")
    assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
    assert (root.path / "opt/rezip-kiosk/current").readlink().as_posix() == "9.9.0"
    # unattended-upgrades takes only what matches this origin and label.
    settings = (root.path / "etc/apt/apt.conf.d/52rezip-kiosk-unattended-upgrades").read_text()
    assert (
        '"origin=RE-ZIP,label=RE-ZIP kiosk";' in settings and "#clear Unattended-Upgrade::Origins-Pattern;" in settings
    )

    # A Release file changed after signing: apt refuses the repository.
    release = root.path / "srv/repo/dists/bookworm-canary/InRelease"
    release.write_text(release.read_text().replace("Label: RE-ZIP kiosk", "Label: RE-ZIP kiosk!"))
    tampered = root.run("apt-get", "update")
    assert "is not signed" in tampered.stdout + tampered.stderr or "BADSIG" in tampered.stdout + tampered.stderr
