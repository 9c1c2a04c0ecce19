"""scripts/up and scripts/test as thin wrappers: run against a stand-in virtual environment whose
`python` only records how it was called, so the tests check the wrappers' own logic (install
once with the right extras, pass the operator's arguments through untouched) in milliseconds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECORDING_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$(dirname "$0")/../calls.log"
"""


def fake_checkout(tmp_path: Path, *, installed: tuple[str, ...]) -> Path:
    checkout = tmp_path / "ordo"
    shutil.copytree(ROOT / "scripts", checkout / "scripts")
    shutil.copy(ROOT / "pyproject.toml", checkout / "pyproject.toml")
    python = checkout / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(RECORDING_PYTHON)
    python.chmod(0o755)
    for extra in installed:
        (checkout / ".venv" / f".ordo-installed{'-' + extra if extra else ''}").touch()
    return checkout


def calls(checkout: Path) -> list[str]:
    log = checkout / ".venv" / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def run(checkout: Path, script: str, *args: str) -> None:
    # a root machine without chromium: scripts/test would apt-get it (tested on its own below)
    env = dict(os.environ, ORDO_NO_CHROMIUM_INSTALL="1")
    subprocess.run([str(checkout / "scripts" / script), *args], cwd=checkout, check=True,
                   capture_output=True, text=True, timeout=30, env=env)


def test_up_passes_its_arguments_to_ordo_up_and_adds_demo_load(tmp_path: Path) -> None:
    checkout = fake_checkout(tmp_path, installed=("",))
    run(checkout, "up", "--duration", "20", "--json", "out.json")
    assert calls(checkout) == ["-m sequencing.cli up --config cluster.toml --load 200 --duration 20 --json out.json"]


def test_up_keeps_an_explicit_load(tmp_path: Path) -> None:
    checkout = fake_checkout(tmp_path, installed=("",))
    run(checkout, "up", "--load", "0")
    assert calls(checkout) == ["-m sequencing.cli up --config cluster.toml --load 0"]


@pytest.mark.parametrize("script, args, extra", [
    ("up", ("--duration", "20", "--json", "out.json"), ""),
    ("test", ("-q", "tests/test_layering.py"), "[test]"),
])
def test_first_run_installs_the_right_extras_never_the_arguments(
        tmp_path: Path, script: str, args: tuple[str, ...], extra: str) -> None:
    checkout = fake_checkout(tmp_path, installed=())
    run(checkout, script, *args)
    installs = [c for c in calls(checkout) if c.startswith("-m pip install --quiet -e")]
    assert installs == [f"-m pip install --quiet -e {checkout}{extra}"]
    assert (checkout / ".venv" / f".ordo-installed{'-test' if extra else ''}").exists()


def test_second_run_does_not_install_again(tmp_path: Path) -> None:
    checkout = fake_checkout(tmp_path, installed=("test",))
    run(checkout, "test", "-q")
    assert not [c for c in calls(checkout) if "pip install" in c]
    assert calls(checkout)[-1] == "-m pytest -q"


FAULT_SCRIPTS = sorted(p.name for p in (ROOT / "scripts" / "faults").iterdir()
                       if p.is_file() and not p.name.startswith("_"))


def test_every_fault_script_is_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    operations = (ROOT / "docs" / "OPERATIONS.md").read_text()
    assert "partition-heal" in FAULT_SCRIPTS
    for name in FAULT_SCRIPTS:
        assert f"scripts/faults/{name} " in readme, f"{name} missing from the README's fault list"
        assert f"`{name}`" in operations or f"`scripts/faults/{name}`" in operations, f"{name} missing from OPERATIONS"


@pytest.mark.parametrize("name", FAULT_SCRIPTS)
def test_fault_scripts_share_the_common_options(name: str) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "faults" / name), "--help"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    for option in ("--config", "--seconds", "--timeout", "--json"):
        assert option in done.stdout, f"{name}: {option} missing"


def chromium_setup(tmp_path: Path, *, uid: str, apt_ok: bool | None,
                   env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run _venv.sh's ensure_chromium with a PATH of stand-ins: no chromium, ``id -u`` printing
    ``uid``, and an apt-get that records its calls (succeeding or failing; None: no apt-get)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname",):
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    (bin_dir / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    if apt_ok is not None:
        (bin_dir / "apt-get").write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/apt.log\nexit {0 if apt_ok else 1}\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    done = subprocess.run(["/bin/bash", "-c", f". {ROOT}/scripts/_venv.sh; ensure_chromium"],
                          env={"PATH": str(bin_dir), **(env or {})}, capture_output=True, text=True, timeout=30,
                          check=False)
    return done, tmp_path / "apt.log"


def test_scripts_test_installs_chromium_as_root_where_missing(tmp_path: Path) -> None:
    done, apt_log = chromium_setup(tmp_path, uid="0", apt_ok=True)
    assert done.returncode == 0, done.stderr
    assert "install -y -qq chromium" in apt_log.read_text()
    assert "ensure_chromium" in (ROOT / "scripts" / "test").read_text()


@pytest.mark.parametrize("uid, apt_ok, reason", [
    ("0", False, "could not install chromium"),
    ("0", None, "no apt-get"),
    ("1000", True, "not root"),
])
def test_without_chromium_the_browser_tests_skip_with_a_reason(
        tmp_path: Path, uid: str, apt_ok: bool | None, reason: str) -> None:
    done, apt_log = chromium_setup(tmp_path, uid=uid, apt_ok=apt_ok)
    assert done.returncode == 0, done.stderr
    assert reason in done.stderr and "browser tests will skip" in done.stderr
    assert apt_log.exists() == (uid == "0" and apt_ok is not None)


def test_ordo_no_chromium_install_leaves_the_system_alone(tmp_path: Path) -> None:
    done, apt_log = chromium_setup(tmp_path, uid="0", apt_ok=True, env={"ORDO_NO_CHROMIUM_INSTALL": "1"})
    assert done.returncode == 0 and "ORDO_NO_CHROMIUM_INSTALL" in done.stderr
    assert not apt_log.exists()
