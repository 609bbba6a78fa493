"""Finding (and building) the control-plane binaries built by ``tools/kube/build.sh``.

The build script owns the cache key (a hash of go.mod, go.sum, itself and ``go version``), so
Python asks it where the binaries are instead of computing the key a second time.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

BINARIES = ("kube-apiserver", "kube-controller-manager", "kubectl", "etcd")
"""What a usable bin dir holds."""

BIN_ENV = "MODELROLLOUT_KUBE_BIN"
"""Environment variable naming a bin dir to use as is (skips the build script)."""


class BinariesMissingError(RuntimeError):
    """The binaries are not built (or not where we were told); the message says how to fix it."""


def build_script() -> Path | None:
    """``tools/kube/build.sh`` of the source checkout this package runs from, if any."""
    script = Path(__file__).resolve().parents[3] / "tools" / "kube" / "build.sh"
    return script if script.is_file() else None


def missing_in(bin_dir: Path) -> list[str]:
    return [name for name in BINARIES if not os.access(bin_dir / name, os.X_OK)]


def _script_output(*args: str) -> Path:
    script = build_script()
    if script is None:
        raise BinariesMissingError(
            f"no tools/kube/build.sh next to this package; set {BIN_ENV} to a directory with "
            + ", ".join(BINARIES)
        )
    result = subprocess.run(
        ["bash", str(script), *args], stdout=subprocess.PIPE, text=True, check=False
    )
    if result.returncode != 0:
        raise BinariesMissingError(
            f"{script} {' '.join(args)} failed (exit {result.returncode}; its error is above); "
            f"or set {BIN_ENV} to a directory with the binaries"
        )
    return Path(result.stdout.strip().splitlines()[-1])


def locate() -> Path:
    """The bin dir to use: ``$MODELROLLOUT_KUBE_BIN``, else the build script's cache dir."""
    env_dir = os.environ.get(BIN_ENV)
    bin_dir = Path(env_dir) if env_dir else _script_output("--print-dir")
    missing = missing_in(bin_dir)
    if missing:
        raise BinariesMissingError(
            f"{', '.join(missing)} not found in {bin_dir}: run 'modelrollout cluster build' "
            "(or 'bash tools/kube/build.sh'; the first build compiles Kubernetes from source)"
        )
    return bin_dir


def build() -> Path:
    """Run the build script (a no-op when cached) and return the bin dir; progress on stderr."""
    return _script_output()
