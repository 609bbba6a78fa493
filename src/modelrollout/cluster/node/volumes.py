"""Where each pod volume lives on the host, what files it holds, and the mounts of a container.

Everything here is pure: the agent writes the files and the launcher mounts them.
"""

from __future__ import annotations

import base64
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelrollout.cluster.node.expand import JSON, ConfigError, Lookup, field_value

FILE_VOLUMES = ("configMap", "secret", "downwardAPI", "projected")
"""Volume kinds whose content the agent writes into a per-pod directory."""
DIR_VOLUMES = ("emptyDir",)
"""Volume kinds that are an empty per-pod directory."""


@dataclass(frozen=True)
class Mount:
    """One bind mount in a container's mount namespace."""

    source: str
    target: str
    read_only: bool = False
    is_file: bool = False


@dataclass(frozen=True)
class PodPaths:
    """The host directories of one pod."""

    state_dir: Path
    namespace: str
    name: str
    uid: str

    @property
    def pod_dir(self) -> Path:
        return self.state_dir / "pods" / self.uid

    @property
    def hosts_file(self) -> Path:
        return self.pod_dir / "hosts"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs" / f"{self.namespace}_{self.name}_{self.uid}"

    def volume_dir(self, name: str) -> Path:
        return self.pod_dir / "volumes" / name

    def termination_file(self, container: str) -> Path:
        return self.pod_dir / "termination" / container

    def claim_dir(self, claim: str) -> Path:
        return self.state_dir / "pvc" / self.namespace / claim


def volume_source(volume: JSON, paths: PodPaths) -> Path:
    """The host directory that backs a pod volume."""
    if "hostPath" in volume:
        return Path(volume["hostPath"]["path"])
    if "persistentVolumeClaim" in volume:
        return paths.claim_dir(volume["persistentVolumeClaim"]["claimName"])
    if any(kind in volume for kind in (*FILE_VOLUMES, *DIR_VOLUMES)):
        return paths.volume_dir(volume["name"])
    kinds = sorted(k for k in volume if k != "name")
    raise ConfigError(f"volume {volume.get('name')!r}: unsupported source {kinds}")


def container_mounts(pod: JSON, container: JSON, paths: PodPaths) -> list[Mount]:
    """The bind mounts of a container, parents before children; /etc/hosts and its
    termination-message file included."""
    volumes = {v["name"]: v for v in pod.get("spec", {}).get("volumes", [])}
    mounts: list[Mount] = []
    for vm in container.get("volumeMounts", []):
        if vm["name"] not in volumes:
            raise ConfigError(f"volumeMount {vm['name']!r} names no volume of the pod")
        source = volume_source(volumes[vm["name"]], paths)
        sub = vm.get("subPath", "")
        if sub:
            if posixpath.isabs(sub) or ".." in sub.split("/"):
                raise ConfigError(f"subPath {sub!r} must be relative and stay inside the volume")
            source = source / sub
        mounts.append(
            Mount(
                source=str(source),
                target=vm["mountPath"],
                read_only=bool(vm.get("readOnly", False)),
                is_file=bool(sub) and source.is_file(),
            )
        )
    mounts.append(Mount(str(paths.hosts_file), "/etc/hosts", read_only=True, is_file=True))
    message_path = container.get("terminationMessagePath", "/dev/termination-log")
    mounts.append(Mount(str(paths.termination_file(container["name"])), message_path, False, True))
    return sorted(mounts, key=lambda m: posixpath.normpath(m.target).count("/"))


def _key_files(
    data: dict[str, str] | None, source: JSON, kind: str, default_mode: int
) -> dict[str, tuple[bytes, int]]:
    name = source.get("name", source.get("secretName", ""))
    if data is None:
        if source.get("optional", False):
            return {}
        raise ConfigError(f"{kind} {name!r} not found")
    items = source.get("items")
    if not items:
        return {k: (v.encode(), default_mode) for k, v in data.items()}
    files: dict[str, tuple[bytes, int]] = {}
    for item in items:
        if item["key"] not in data:
            if source.get("optional", False):
                continue
            raise ConfigError(f"key {item['key']!r} not found in {kind} {name!r}")
        files[item["path"]] = (data[item["key"]].encode(), int(item.get("mode", default_mode)))
    return files


def _downward_files(
    items: list[JSON], pod: JSON, pod_ip: str, host_ip: str, default_mode: int
) -> dict[str, tuple[bytes, int]]:
    files: dict[str, tuple[bytes, int]] = {}
    for item in items:
        if "fieldRef" not in item:
            raise ConfigError("downwardAPI volume: only fieldRef items are supported")
        value = field_value(pod, item["fieldRef"]["fieldPath"], pod_ip, host_ip)
        files[item["path"]] = (value.encode(), int(item.get("mode", default_mode)))
    return files


TokenSource = Callable[[JSON], str]
"""Returns a service-account token for a projected ``serviceAccountToken`` source."""


@dataclass(frozen=True)
class VolumeContext:
    """What volume content depends on beyond the pod: the API (lookup, tokens) and addresses."""

    lookup: Lookup
    token: TokenSource
    pod_ip: str
    host_ip: str


def volume_files(volume: JSON, pod: JSON, ctx: VolumeContext) -> dict[str, tuple[bytes, int]]:
    """Relative path -> (content, mode) of a configMap/secret/downwardAPI/projected volume."""
    ns = pod["metadata"]["namespace"]
    if "configMap" in volume:
        src = volume["configMap"]
        mode = int(src.get("defaultMode", 0o644))
        return _key_files(ctx.lookup.config_map(ns, src.get("name", "")), src, "configmap", mode)
    if "secret" in volume:
        src = volume["secret"]
        mode = int(src.get("defaultMode", 0o644))
        return _key_files(ctx.lookup.secret(ns, src.get("secretName", "")), src, "secret", mode)
    if "downwardAPI" in volume:
        src = volume["downwardAPI"]
        mode = int(src.get("defaultMode", 0o644))
        return _downward_files(src.get("items", []), pod, ctx.pod_ip, ctx.host_ip, mode)
    if "projected" in volume:
        return _projected_files(volume["projected"], pod, ctx)
    return {}


def _projected_files(
    projected: JSON, pod: JSON, ctx: VolumeContext
) -> dict[str, tuple[bytes, int]]:
    ns = pod["metadata"]["namespace"]
    mode = int(projected.get("defaultMode", 0o644))
    files: dict[str, tuple[bytes, int]] = {}
    for source in projected.get("sources", []):
        if "serviceAccountToken" in source:
            sat = source["serviceAccountToken"]
            files[sat["path"]] = (ctx.token(sat).encode(), mode)
        elif "configMap" in source:
            src = source["configMap"]
            data = ctx.lookup.config_map(ns, src.get("name", ""))
            files.update(_key_files(data, src, "configmap", mode))
        elif "secret" in source:
            src = source["secret"]
            files.update(
                _key_files(ctx.lookup.secret(ns, src.get("name", "")), src, "secret", mode)
            )
        elif "downwardAPI" in source:
            items = source["downwardAPI"].get("items", [])
            files.update(_downward_files(items, pod, ctx.pod_ip, ctx.host_ip, mode))
        else:
            raise ConfigError(f"projected volume: unsupported source {sorted(source)}")
    return files


def decode_secret(secret: JSON) -> dict[str, str]:
    """A Secret's data, base64-decoded (stringData is folded in by the API server)."""
    return {
        k: base64.b64decode(v).decode("utf-8", "replace")
        for k, v in (secret.get("data") or {}).items()
    }
