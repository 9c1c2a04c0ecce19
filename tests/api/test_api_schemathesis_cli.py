"""Schemathesis's own CLI (``st run``, installed with the test extras) against a live replica's
/openapi.json, every check on (5xx, status codes, content types, headers, response schemas,
negative data rejected, positive data accepted, unsupported methods, stateful links). Fails on any
finding. The SSE subscription is an endless stream; test_api_fuzz fuzzes it separately.

Slow profile only (about 1.5 min); against the code before issue 8 it reported the GET-on-batch
400, the unknown-field batch entry answered 200 and the undocumented bundle 400."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from .apiutil import ClusterThread

pytestmark = pytest.mark.slow

EXAMPLES = 50


def st_command() -> list[str]:
    found = shutil.which("st") or str(Path(sys.executable).with_name("st"))
    if not Path(found).exists():
        pytest.skip("schemathesis's CLI (st) is not installed: pip install -e '.[test]'")
    return [found]


async def test_schemathesis_cli_finds_nothing(cluster: ClusterThread, tmp_path: Path) -> None:
    # one worker: with two, schemathesis's threads tripped over CPython 3.11 (an AST SystemError)
    command = [
        *st_command(), "run", f"{cluster.api(0)}/openapi.json", "--checks", "all",
        "--exclude-path", "/v1/rollups/{rollup_id}/subscribe", "--exclude-path", "/v1/dashboard/events",
        "--max-examples", str(EXAMPLES),
        "--workers", "1", "--request-timeout", "15", "--no-color", "--generation-database", "none",
        "--suppress-health-check", "all", "--report", "junit", "--report-dir", str(tmp_path),
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(Path(__file__).with_name("schemathesis_hooks.py"))}
    result = await trio.to_thread.run_sync(
        lambda: subprocess.run(command, capture_output=True, text=True, timeout=900, check=False, env=env))
    output = result.stdout + result.stderr
    print(output)
    assert result.returncode == 0, output[-6000:]
    assert "No issues found" in output
    status = await cluster.status(0)
    assert status["started"] and len(status["peers_connected"]) == 3
