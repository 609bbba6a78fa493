"""Settings of the node agent, and which images count as the project's own."""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_IMAGE_SUFFIXES: tuple[str, ...] = (
    "modelrollout",
    "modelrollout-operator",
    "modelrollout-serving",
    "modelrollout/operator",
    "modelrollout/serving",
)
"""Repositories (without registry host, tag or digest) whose images the node runs."""


@dataclass(frozen=True)
class NodeSettings:
    """Everything the node agent needs; built once by the caller, never read from globals."""

    kubeconfig: Path
    """Admin kubeconfig of the local control plane (the agent binds pods and writes status)."""
    state_dir: Path
    """Pod directories, volumes, logs and PVC stand-ins live under here."""
    node_name: str = "modelrollout-node"
    """Name of the Node object the agent registers and binds pods to."""
    venv: Path = field(default_factory=lambda: Path(sys.prefix))
    """The virtualenv whose programs stand in for the project's images."""
    image_suffixes: tuple[str, ...] = DEFAULT_IMAGE_SUFFIXES
    """An image runs locally when its repository equals or ends with '/'+ one of these."""
    pod_network: str = "127.10.0.0/17"
    """Loopback range pod addresses are allocated from (see ``networks_for``)."""
    service_network: str = "127.10.128.0/17"
    """Loopback range for Service proxies whose ClusterIP is not in 127/8 or is taken."""
    schedule: bool = True
    """Whether this agent binds pending pods to its node (one scheduling agent per cluster)."""
    host_ip: str = "127.0.0.1"
    """The node's address, reported as status.hostIP and the Node's InternalIP."""
    capacity: dict[str, str] = field(
        default_factory=lambda: {"cpu": "8", "memory": "16Gi", "pods": "110"}
    )
    """Node capacity reported to the API (not enforced)."""
    heartbeat_seconds: float = 10.0
    """How often the Lease is renewed and the Node status refreshed."""
    backoff_initial_seconds: float = 10.0
    """First restart back-off of a crashed container; doubles per restart."""
    backoff_max_seconds: float = 300.0
    """Upper bound of the restart back-off."""
    backoff_reset_seconds: float = 600.0
    """A container that ran this long without exiting starts its back-off over."""
    resync_seconds: float = 5.0
    """Safety net: every pod worker re-evaluates its pod at least this often."""
    token_expiration_seconds: int = 3600
    """Lifetime requested for projected service-account tokens when the pod does not say."""


def networks_for(cluster_name: str) -> tuple[str, str]:
    """(pod network, service network) of a cluster: ``127.N.0.0/17`` and ``127.N.128.0/17``
    with N in 10..189 derived from the name, so two local clusters' pods rarely share a range."""
    octet = 10 + int(hashlib.sha256(cluster_name.encode()).hexdigest(), 16) % 180
    return f"127.{octet}.0.0/17", f"127.{octet}.128.0/17"


def image_repository(image: str) -> str:
    """The repository part of an image reference: no registry host, tag or digest."""
    name = image.split("@", 1)[0]
    last_slash = name.rfind("/")
    last_colon = name.rfind(":")
    if last_colon > last_slash:
        name = name[:last_colon]
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    return "/".join(parts)


def is_project_image(image: str, suffixes: tuple[str, ...] = DEFAULT_IMAGE_SUFFIXES) -> bool:
    """Whether the node can run this image from the project's virtualenv."""
    repo = image_repository(image)
    return any(repo == s or repo.endswith("/" + s) for s in suffixes)


PYTHON_NAMES = ("python", "python3", f"python3.{sys.version_info.minor}")
"""Program names that mean the image's Python: the virtualenv's interpreter here."""


def resolve_program(word: str, venv: Path, path_env: str) -> str | None:
    """The executable on this machine that stands in for the image's program ``word``."""
    base = word.rsplit("/", 1)[-1]
    if base in PYTHON_NAMES:
        return str(venv / "bin" / "python")
    if base and (venv / "bin" / base).is_file():
        return str(venv / "bin" / base)
    if word.startswith("/"):
        return word if Path(word).is_file() else None
    for directory in path_env.split(":"):
        candidate = Path(directory or ".") / word
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None
