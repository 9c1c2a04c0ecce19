"""sequencing.client as a rollup team sees it: one import path, and nothing of the replica behind it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import sequencing.client
from sequencing.client import client as client_module

ROOT = Path(__file__).resolve().parents[2]
REPLICA_SIDE = ("sequencing.replica", "sequencing.storage", "sequencing.api", "sequencing.cluster", "sequencing.cli")


def test_every_public_name_is_importable_from_the_package() -> None:
    assert set(client_module.__all__) <= set(sequencing.client.__all__)
    for name in sequencing.client.__all__:
        assert getattr(sequencing.client, name) is not None


def test_the_readme_imports_the_client_the_documented_way() -> None:
    readme = (ROOT / "README.md").read_text()
    imports = re.findall(r"^from (sequencing\.client\S*) import (.+)$", readme, flags=re.MULTILINE)
    assert imports, "the README shows no client import"
    for module, names in imports:
        assert module == "sequencing.client", f"README imports from {module}, not sequencing.client"
        for name in names.split(","):
            assert name.strip() in sequencing.client.__all__


def replica_side(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in REPLICA_SIDE)]


def loaded_after(statement: str) -> list[str]:
    """The sequencing modules a fresh interpreter has loaded after running ``statement``."""
    code = f"{statement}\nimport sys\nprint('\\n'.join(m for m in sys.modules if m.startswith('sequencing')))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                         timeout=60)
    return run.stdout.split()


def test_the_client_loads_nothing_of_the_replica() -> None:
    loaded = loaded_after("import sequencing.client, sequencing.client.evidence")
    assert "sequencing.client.protocol" in loaded
    assert not replica_side(loaded), loaded


def test_the_check_sees_a_replica_module() -> None:
    """The check above can fail: importing a replica module next to the client is reported."""
    loaded = loaded_after("import sequencing.client, sequencing.cli.main")
    assert "sequencing.cli.main" in replica_side(loaded)
