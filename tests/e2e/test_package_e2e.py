"""The .deb of scripts/package.sh: installed into a scratch root with `dpkg-deb -x`, its
binaries run; its file list, conffile and maintainer scripts are what docs/operations.md says.
scripts/test-all.sh builds it first (`scripts/package.sh --debug`); BTU_DEB names another one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

DEB = Path(os.environ.get("BTU_DEB", REPO / "target" / "debian" / "btu-scheduler-debug.deb"))

EXPECTED_FILES = {
    "./usr/bin/btu",
    "./usr/bin/btu-daemon",
    "./lib/systemd/system/btu-daemon.service",
    "./etc/btu_scheduler/btu_scheduler.toml",
    "./usr/share/doc/btu-scheduler/README.md",
    "./usr/share/doc/btu-scheduler/copyright",
    "./usr/share/doc/btu-scheduler/operations.md",
    "./usr/share/doc/btu-scheduler/daemon.md",
    "./usr/share/doc/btu-scheduler/supervisor-btu-daemon.conf",
}


@pytest.fixture(scope="module")
def deb() -> Path:
    if not DEB.exists():
        pytest.fail(f"{DEB} is missing: run scripts/package.sh --debug (scripts/test-all.sh does)")
    return DEB


def test_installed_binaries_run_from_a_scratch_root(deb, tmp_path):
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    version = subprocess.run([str(root / "usr/bin/btu"), "--version"], capture_output=True, text=True, timeout=10)
    assert version.returncode == 0 and version.stdout.startswith("btu "), version
    help_ = subprocess.run([str(root / "usr/bin/btu-daemon"), "--help"], capture_output=True, text=True, timeout=10)
    assert help_.returncode == 0 and "--config" in help_.stdout, help_
    # The installed configuration is the commented example, and the installed check accepts it.
    conf = root / "etc/btu_scheduler/btu_scheduler.toml"
    assert conf.read_text() == (REPO / "examples/btu_scheduler.toml").read_text()
    unit = (root / "lib/systemd/system/btu-daemon.service").read_text()
    assert "Type=notify" in unit and "WatchdogSec=" in unit and "ExecStart=/usr/bin/btu-daemon" in unit


def test_file_list_conffile_and_maintainer_scripts(deb, tmp_path):
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    files = {line.split()[-1] for line in listing.splitlines() if not line.startswith("d")}
    missing = EXPECTED_FILES - files
    assert not missing, f"missing from the package: {sorted(missing)}\n{listing}"
    unexpected = {f for f in files if not f.startswith(("./usr/bin/", "./usr/share/doc/btu-scheduler/"))} - EXPECTED_FILES
    assert not unexpected, f"unexpected files: {sorted(unexpected)}"
    modes = {line.split()[-1]: line.split()[0] for line in listing.splitlines()}
    assert modes["./usr/bin/btu-daemon"] == "-rwxr-xr-x" and modes["./usr/bin/btu"] == "-rwxr-xr-x"

    control = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", str(deb), str(control)], check=True)
    assert (control / "conffiles").read_text().split() == ["/etc/btu_scheduler/btu_scheduler.toml"]
    fields = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Version"], capture_output=True, text=True,
                            check=True).stdout
    assert "Package: btu-scheduler" in fields
    for script in ("postinst", "postrm"):
        text = (control / script).read_text()
        commands = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        systemctl = [c for c in commands if "systemctl" in c]
        assert systemctl == ["systemctl daemon-reload >/dev/null 2>&1 || true"], (script, commands)
        assert not [c for c in commands if "deb-systemd" in c or "start" in c or "enable" in c], commands
    assert not (control / "preinst").exists() and not (control / "prerm").exists()
