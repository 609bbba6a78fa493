"""Start, restart, crash, stop: `up` is idempotent, a crash is reported, `down` leaves nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from modelrollout import exitcodes
from modelrollout.cluster.controlplane import LocalCluster
from modelrollout.cluster.process import ComponentError
from tests.conftest import Kubectl, wait_for

pytestmark = pytest.mark.cluster


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text`` (a state dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def test_version_is_the_pinned_kubernetes(k8s_api: Any, kubectl: Kubectl) -> None:
    info = client.VersionApi(k8s_api).get_code()
    assert info.git_version == "v1.37.2"
    assert (info.major, info.minor) == ("1", "37")
    versions = json.loads(kubectl("version", "-o", "json").stdout)
    assert versions["clientVersion"]["gitVersion"] == "v1.37.2"
    assert versions["serverVersion"]["gitVersion"] == "v1.37.2"


def test_up_twice_is_harmless(cluster: LocalCluster) -> None:
    before = {s.name: s.pid for s in cluster.status()}
    ports = cluster.ports
    cluster.up()
    after = cluster.status()
    assert {s.name: s.pid for s in after} == before
    assert all(s.state == "running" and s.healthy for s in after)
    assert cluster.ports == ports


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelrollout", "cluster", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_second_cluster_from_the_cli_crash_report_and_clean_down(
    cluster: LocalCluster, kubectl: Kubectl, tmp_path: Path
) -> None:
    name = f"second-{os.getpid()}"
    common = ("--name", name, "--state-root", str(tmp_path), "--bin-dir", str(cluster.bin_dir))
    second = LocalCluster(replace(cluster.settings, name=name, state_root=tmp_path))
    try:
        up = run_cli("up", *common)
        assert up.returncode == exitcodes.OK, up.stderr
        # Own ports, own data: two clusters side by side.
        assert not set(second.ports.as_dict().values()) & set(cluster.ports.as_dict().values())
        kubectl("create", "namespace", "only-in-second", kubeconfig=second.kubeconfig_path)
        assert kubectl("get", "namespace", "only-in-second", check=False).returncode != 0
        env = run_cli("env", *common)
        assert f"export KUBECONFIG={second.kubeconfig_path}" in env.stdout

        # A crash is reported with the component's log, and `up` brings it back.
        pid = next(s.pid for s in second.status() if s.name == "kube-controller-manager")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for("the crash to show", lambda: run_cli("status", *common).returncode != 0)
        status = run_cli("status", *common)
        assert status.returncode == exitcodes.FAILURE
        assert "kube-controller-manager  crashed" in status.stdout
        again = run_cli("up", *common)
        assert again.returncode == exitcodes.OK, again.stderr
        assert "had exited; restarting" in again.stderr
        assert run_cli("status", *common).returncode == exitcodes.OK
    finally:
        down = run_cli("down", *common)
    assert down.returncode == exitcodes.OK, down.stderr
    assert processes_mentioning(str(second.layout.root)) == []
    assert not second.layout.root.exists()


def test_component_that_cannot_start_fails_up_with_its_log(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    settings = replace(
        cluster.settings,
        name=f"broken-{os.getpid()}",
        state_root=tmp_path,
        apiserver_args=("--no-such-flag=1",),
    )
    broken = LocalCluster(settings)
    try:
        with pytest.raises(ComponentError) as err:
            broken.up()
        assert err.value.component == "kube-apiserver"
        assert "unknown flag: --no-such-flag" in str(err.value)  # the API server's own words
        crashed = {s.name: s.state for s in broken.status()}
        assert crashed == {
            "etcd": "running",
            "kube-apiserver": "crashed",
            "kube-controller-manager": "stopped",
        }
    finally:
        broken.down()
    assert processes_mentioning(str(broken.layout.root)) == []
