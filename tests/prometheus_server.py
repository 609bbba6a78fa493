"""A real Prometheus server (built by tools/prometheus/build.sh) for the provider's tests.

``PrometheusServer.start`` runs the binary on 127.0.0.1:<free port> with a
1 s scrape interval and one ``file_sd_configs`` job whose JSON file the test
rewrites with ``set_targets`` (model-server ``host:port`` targets labelled
model/version). A missing binary fails the test with the build command; it is
never skipped. ``stop`` is bounded (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "tools" / "prometheus" / "build.sh"
HOST = "127.0.0.1"

CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: model-servers
    file_sd_configs:
      - files: [{targets}]
        refresh_interval: 1s
"""


def binary() -> Path:
    """The built ``prometheus`` (fails the test with the build command when missing)."""
    out = subprocess.run(
        ["bash", str(BUILD), "--print-dir"], capture_output=True, text=True, check=True
    )
    path = Path(out.stdout.strip().splitlines()[-1]) / "prometheus"
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"Prometheus is not built ({path} missing): run bash tools/prometheus/build.sh "
            "(scripts/setup.sh does it)",
            pytrace=False,
        )
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class TargetGroup:
    """``host:port`` addresses scraped with the same labels."""

    targets: tuple[str, ...]
    labels: Mapping[str, str]


class PrometheusServer:
    """One Prometheus process with its config, file_sd targets and TSDB in ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = _free_port()
        self.targets_file = workdir / "targets.json"
        self.log_path = workdir / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 60.0) -> PrometheusServer:
        self.set_targets([])
        config = self.workdir / "prometheus.yml"
        config.write_text(CONFIG.format(targets=json.dumps(str(self.targets_file))))
        cmd = [
            str(binary()),
            f"--config.file={config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address={HOST}:{self.port}",
            "--log.level=warn",
        ]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        self._wait("ready", lambda: self._get("/-/ready")[0] == 200, timeout)
        return self

    def set_targets(self, groups: Sequence[TargetGroup]) -> None:
        """Rewrite the file_sd JSON atomically (Prometheus watches it)."""
        doc = [{"targets": list(g.targets), "labels": dict(g.labels)} for g in groups]
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(self.targets_file)

    def wait_targets_up(self, count: int, timeout: float = 30.0) -> None:
        """Until ``count`` targets were scraped successfully (bounded)."""

        def up() -> bool:
            _, body = self._get("/api/v1/targets?state=active")
            active = json.loads(body)["data"]["activeTargets"]
            return sum(t["health"] == "up" for t in active) >= count

        self._wait(f"{count} targets up", up, timeout)

    def query(self, promql: str, at: float | None = None) -> dict[str, Any]:
        """The JSON answer of one instant query (at ``at``, Unix seconds, or now)."""
        params = {"query": promql, **({"time": f"{at:.3f}"} if at is not None else {})}
        _status, body = self._get("/api/v1/query?" + urllib.parse.urlencode(params))
        answer: dict[str, Any] = json.loads(body)
        return answer

    def rss_bytes(self) -> int:
        """Resident memory of the process now (from /proc)."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait (bounded); SIGKILL after ``timeout``. Returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)

    def _get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.address + path, timeout=5) as answer:
                return int(answer.status), answer.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def _wait(self, what: str, check: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited {self.proc.returncode}:\n{self.log()}")
            try:
                if check():
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus: timed out waiting for {what}:\n{self.log()}")
