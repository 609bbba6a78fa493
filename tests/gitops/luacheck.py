"""The gopher-lua runner of manifests/argocd (tools/lua), built once (cached) and called here."""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
ARGOCD = REPO / "manifests" / "argocd"
ROOT = ARGOCD / "resource_customizations"
KINDS = ROOT / "modelrollout.io"


@functools.cache
def binary() -> Path:
    """Build luacheck with tools/lua/build.sh (skipped when the cached binary is current)."""
    done = subprocess.run(
        ["bash", str(REPO / "tools" / "lua" / "build.sh")],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, f"tools/lua/build.sh failed:\n{done.stderr}"
    return Path(done.stdout.strip().splitlines()[-1])


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary()), *args], capture_output=True, text=True, check=False, timeout=120, env=env
    )


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def health(path: Path) -> dict[str, dict[str, str]]:
    """Health of each object in a YAML/JSON file (an object or a List), by "Kind/name"."""
    done = run("health", str(ROOT), str(path))
    assert done.returncode == 0, done.stderr
    return {f"{r['kind']}/{r['name']}": r["result"] for r in lines(done.stdout)}


def action(name: str, path: Path) -> dict[str, Any]:
    """The object in path after the resource action ``name``."""
    done = run("action", str(ROOT), name, str(path))
    assert done.returncode == 0, done.stderr
    return dict(lines(done.stdout)[0]["result"])
