"""Running a fault script as a user does and reading its JSON verdict (tests/integration)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def run_script(path: Path, *args: str, timeout: float = 400) -> tuple[int, dict[str, Any], str]:
    """(exit code, verdict, stderr); fails the test if stdout holds no JSON verdict."""
    done = subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, timeout=timeout,
                          check=False, env=dict(os.environ))
    try:
        verdict = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"no JSON verdict on stdout (exit {done.returncode}):\n{done.stderr[-3000:]}") from None
    return done.returncode, verdict, done.stderr
