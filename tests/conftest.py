"""Shared fixtures: a real local Kubernetes control plane for tests/cluster and tests/e2e.

``cluster`` (session): a `LocalCluster` named ``pytest-<pid>`` in a temporary state dir,
started once and torn down at the end of the session. Set ``MODELROLLOUT_TEST_CLUSTER=<name>``
to use an already running ``modelrollout cluster up --name <name>`` instead (kept running).
``namespace`` (per test): a fresh namespace, deleted afterwards. ``kubectl``: the built kubectl
with the admin kubeconfig. ``k8s_api``: a ``kubernetes`` ApiClient with admin credentials.
Missing binaries fail the cluster tests with the build command to run; they are never skipped.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from modelrollout.cluster.controlplane import LocalCluster
    from tests.prometheus_server import PrometheusServer

TEST_CLUSTER_ENV = "MODELROLLOUT_TEST_CLUSTER"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """The session's control plane (etcd, kube-apiserver, kube-controller-manager)."""
    from modelrollout.cluster.binaries import BinariesMissingError
    from modelrollout.cluster.controlplane import LocalCluster
    from modelrollout.cluster.process import ComponentError
    from modelrollout.cluster.settings import ClusterSettings

    reuse = os.environ.get(TEST_CLUSTER_ENV)
    if reuse:
        settings = ClusterSettings(name=reuse)
    else:
        root = tmp_path_factory.mktemp("clusters")
        settings = ClusterSettings(name=f"pytest-{os.getpid()}", state_root=root)
    local = LocalCluster(settings)
    try:
        local.up()
    except (BinariesMissingError, ComponentError) as err:
        if not reuse:
            local.down(keep_state=True)
        pytest.fail(f"local cluster did not start: {err}", pytrace=False)
    yield local
    if not reuse:
        local.down()


class Kubectl:
    """The built kubectl bound to one cluster: ``kubectl("get", "pods", "-n", ns)``."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster

    def __call__(
        self,
        *args: str,
        stdin: str | None = None,
        kubeconfig: Path | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl(*args, stdin=stdin, kubeconfig=kubeconfig, check=check)


@pytest.fixture(scope="session")
def kubectl(cluster: LocalCluster) -> Kubectl:
    return Kubectl(cluster)


@pytest.fixture(scope="session")
def k8s_api(cluster: LocalCluster) -> Iterator[Any]:
    """A ``kubernetes.client.ApiClient`` with the admin kubeconfig."""
    from kubernetes import config

    api = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(cluster.kubeconfig_path)
    )
    yield api
    api.close()


def wait_for(what: str, check: Any, timeout: float = 60.0, interval: float = 0.25) -> Any:
    """Poll ``check()`` until it returns something truthy (bounded); fail with ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def namespace(cluster: LocalCluster, kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace whose ``default`` ServiceAccount exists (pods can be created)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", name)
    wait_for(
        f"ServiceAccount default in {name}",
        lambda: (
            kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0
        ),
    )
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


PEER_CRDS = Path(__file__).resolve().parents[1] / "tools" / "peer-crds" / "fetch.sh"


@pytest.fixture(scope="session")
def peer_crds(kubectl: Kubectl) -> list[str]:
    """The Gateway API HTTPRoute/GRPCRoute and Istio VirtualService CRDs, read from their Go
    modules by tools/peer-crds/fetch.sh (cached), installed and Established; their names."""
    import yaml

    done = subprocess.run(
        ["bash", str(PEER_CRDS)], capture_output=True, text=True, check=False, timeout=600
    )
    if done.returncode != 0:
        pytest.fail(f"tools/peer-crds/fetch.sh failed:\n{done.stderr}", pytrace=False)
    directory = Path(done.stdout.strip().splitlines()[-1])
    names = []
    for path in sorted(directory.glob("*.yaml")):
        # Server-side: these CRDs are too large for kubectl's last-applied annotation.
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
        names.append(str(yaml.safe_load(path.read_text())["metadata"]["name"]))
    for name in names:
        kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    return names


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[PrometheusServer]:
    """A real Prometheus on 127.0.0.1 (see tests/prometheus_server.py), stopped afterwards."""
    from tests.prometheus_server import PrometheusServer

    server = PrometheusServer(tmp_path)
    try:
        yield server.start()
    finally:
        server.stop()
