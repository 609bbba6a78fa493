"""One pod on this node: its address, volumes, init containers, containers, probes and deletion."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelrollout.cluster.node import containers
from modelrollout.cluster.node.addresses import AddressPool
from modelrollout.cluster.node.expand import JSON, ConfigError, Lookup
from modelrollout.cluster.node.kube import ApiError, Kube
from modelrollout.cluster.node.settings import NodeSettings, is_project_image
from modelrollout.cluster.node.status import (
    ContainerRecord,
    now,
    pod_phase,
    pod_status,
    will_restart,
)
from modelrollout.cluster.node.volumes import (
    FILE_VOLUMES,
    PodPaths,
    VolumeContext,
    volume_files,
    volume_source,
)

log = logging.getLogger(__name__)
NOT_RUNNABLE = "ImageNotRunnableLocally"


@dataclass
class NodeRuntime:
    """What every pod worker shares: settings, the API, lookups and the address pool."""

    settings: NodeSettings
    kube: Kube
    lookup: Lookup
    pods: AddressPool
    base_env: dict[str, str]
    """Image environment plus the API server address (KUBERNETES_SERVICE_*)."""
    hosts: Callable[[str, str, str], str]
    """hosts(namespace, pod name, pod IP) -> the pod's /etc/hosts content."""
    token: Callable[[JSON, JSON], str]
    """token(pod, serviceAccountToken source) -> a bound service-account token."""


def write_files(directory: Path, files: dict[str, tuple[bytes, int]]) -> None:
    """Write volume files atomically (rename inside the bind-mounted directory)."""
    directory.mkdir(parents=True, exist_ok=True)
    for rel, (data, mode) in files.items():
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        tmp.chmod(mode & 0o777)
        tmp.replace(target)


def token_lifetime(pod: JSON, default: int) -> int:
    """The shortest lifetime of the pod's projected service-account tokens (seconds)."""
    lifetimes = [
        int(source["serviceAccountToken"].get("expirationSeconds", default))
        for volume in pod["spec"].get("volumes", [])
        for source in volume.get("projected", {}).get("sources", [])
        if "serviceAccountToken" in source
    ]
    return min(lifetimes, default=default)


def _wants_directory(volume: JSON) -> bool:
    """emptyDir, PVC stand-ins and hostPath directories are created when missing."""
    if "hostPath" not in volume:
        return True
    return volume["hostPath"].get("type") in (None, "", "DirectoryOrCreate")


class PodWorker:
    """Drives one pod bound to this node from first sight to removal."""

    def __init__(self, rt: NodeRuntime, pod: JSON) -> None:
        self.rt = rt
        self.pod = pod
        meta = pod["metadata"]
        self.uid, self.namespace, self.name = meta["uid"], meta["namespace"], meta["name"]
        self.paths = PodPaths(rt.settings.state_dir, self.namespace, self.name, self.uid)
        spec = pod["spec"]
        self.policy = spec.get("restartPolicy", "Always")
        self.init = [
            ContainerRecord(c["name"], c.get("image", "")) for c in spec.get("initContainers", [])
        ]
        self.records = [ContainerRecord(c["name"], c.get("image", "")) for c in spec["containers"]]
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.pod_ip = ""
        self.start_time = pod.get("status", {}).get("startTime") or now()
        self.init_failed = False
        self._stopping = False
        self.finished = asyncio.Event()
        self._status_event = asyncio.Event()
        self._written: JSON | None = None
        self._conditions: list[JSON] = pod.get("status", {}).get("conditions", [])
        self._tasks: list[asyncio.Task[None]] = []
        self._hosts = b""

    # ---- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        self._spawn(self._main())
        self._spawn(self._status_writer())

    def update(self, pod: JSON) -> None:
        """A newer version of the pod object; a deletion timestamp starts the shutdown."""
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp") and not self.stopping():
            meta_grace = pod["metadata"].get("deletionGracePeriodSeconds")
            grace = meta_grace if meta_grace is not None else self.grace()
            self._spawn(self.stop(float(grace), delete=True))

    def grace(self) -> float:
        return float(self.pod["spec"].get("terminationGracePeriodSeconds", 30))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks.append(asyncio.ensure_future(coro))

    def stopping(self) -> bool:
        """Whether the pod is being stopped (deleted, gone, or the agent shuts down)."""
        return self._stopping

    def request_status(self) -> None:
        self._status_event.set()

    async def stop(self, grace: float, *, delete: bool) -> None:
        """SIGTERM every process group, SIGKILL after grace, then remove the pod (if delete)."""
        if self._stopping:
            return
        self._stopping = True
        log.info("pod %s/%s: stopping (grace %.0f s)", self.namespace, self.name, grace)
        await containers.kill_all(self.procs, grace)
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        if delete:
            await asyncio.to_thread(self._delete_object)
        shutil.rmtree(self.paths.pod_dir, ignore_errors=True)
        self.rt.pods.release(self.uid)
        self.finished.set()

    def _delete_object(self) -> None:
        path = f"/api/v1/namespaces/{self.namespace}/pods/{self.name}"
        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}}
        try:
            self.rt.kube.request("DELETE", path, body)
        except ApiError as exc:
            if exc.status not in (404, 409):
                log.warning("pod %s/%s: delete failed: %s", self.namespace, self.name, exc)

    # ---- the pod's life -----------------------------------------------------------------
    async def _main(self) -> None:
        status = self.pod.get("status", {})
        if status.get("phase") in ("Succeeded", "Failed"):
            return  # finished before the agent (re)started: never run it twice
        if self.pod["metadata"].get("deletionTimestamp"):
            return  # being deleted (e.g. seen again after its processes were stopped)
        self.pod_ip = self.rt.pods.allocate(self.uid, prefer=status.get("podIP"))
        spec = self.pod["spec"]
        foreign = [
            c
            for c in [*spec.get("initContainers", []), *spec["containers"]]
            if not is_project_image(c.get("image", ""), self.rt.settings.image_suffixes)
        ]
        if foreign:
            self._not_runnable({c["name"] for c in foreign})
            return
        await self._prepare()
        for container, record in zip(spec.get("initContainers", []), self.init, strict=True):
            if not await self._run_init(container, record):
                return
        for container, record in zip(spec["containers"], self.records, strict=True):
            self._spawn(self._supervise(container, record))
        self._spawn(self._refresh_volumes())

    def _not_runnable(self, names: set[str]) -> None:
        for record in [*self.init, *self.records]:
            if record.name in names:
                message = (
                    f"image {record.image!r} is not one of the project's images, which this "
                    "node runs as local processes; other images cannot run here"
                )
                record.waiting(NOT_RUNNABLE, message)
            else:
                record.waiting("PodInitializing" if record in self.init else "ContainerCreating")
        self.request_status()

    async def _prepare(self) -> None:
        """Pod directories, hosts file and volumes; retried until the API has what they need."""
        for d in (self.paths.pod_dir / "termination", self.paths.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.write_hosts()
        while not self.stopping():
            try:
                await asyncio.to_thread(self._write_volumes, True)
                return
            except (ConfigError, ApiError) as exc:
                for record in [*self.init, *self.records]:
                    record.waiting("ContainerCreating", f"volumes not ready: {exc}")
                self.request_status()
                await asyncio.sleep(2.0)

    def write_hosts(self) -> None:
        """(Re)write the pod's hosts file when its content changes.

        In place, since the bind mount pins the inode: new bytes first, then truncate,
        so a reader never sees an empty file.
        """
        if not self.pod_ip or not self.paths.pod_dir.is_dir():
            return
        content = self.rt.hosts(self.namespace, self.name, self.pod_ip).encode()
        if content == self._hosts:
            return
        fd = os.open(self.paths.hosts_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, content, 0)
            os.ftruncate(fd, len(content))
        finally:
            os.close(fd)
        self._hosts = content

    def _write_volumes(self, first: bool) -> None:
        ctx = VolumeContext(
            lookup=self.rt.lookup,
            token=lambda sat: self.rt.token(self.pod, sat),
            pod_ip=self.pod_ip,
            host_ip=self.rt.settings.host_ip,
        )
        for volume in self.pod["spec"].get("volumes", []):
            source = volume_source(volume, self.paths)
            if any(kind in volume for kind in FILE_VOLUMES):
                write_files(source, volume_files(volume, self.pod, ctx))
            elif first and volume.get("hostPath", {}).get("type") == "FileOrCreate":
                source.parent.mkdir(parents=True, exist_ok=True)
                source.touch(exist_ok=True)
            elif first and _wants_directory(volume):
                source.mkdir(parents=True, exist_ok=True)

    async def _refresh_volumes(self) -> None:
        """Rewrite token/configMap/secret volumes at half the shortest token lifetime."""
        period = max(
            60.0, 0.5 * token_lifetime(self.pod, self.rt.settings.token_expiration_seconds)
        )
        while not self.stopping():
            await asyncio.sleep(period)
            with contextlib.suppress(ConfigError, ApiError, OSError):
                await asyncio.to_thread(self._write_volumes, False)

    async def _run_init(self, container: JSON, record: ContainerRecord) -> bool:
        crashes = 0
        while not self.stopping():
            code = await self._run_container(container, record)
            if code == 0:
                return True
            if code is None:
                continue
            if self.policy == "Never":
                self.init_failed = True
                self.request_status()
                return False
            crashes = await self._back_off(record, crashes, 0.0)
        return False

    async def _supervise(self, container: JSON, record: ContainerRecord) -> None:
        crashes = 0
        while not self.stopping():
            started = time.monotonic()
            code = await self._run_container(container, record)
            if self.stopping():
                return
            if code is None:
                continue
            if not will_restart(self.policy, code):
                return
            crashes = await self._back_off(record, crashes, time.monotonic() - started)

    async def _back_off(self, record: ContainerRecord, crashes: int, ran: float) -> int:
        """Wait out the restart back-off (CrashLoopBackOff); returns the new crash count."""
        s = self.rt.settings
        if ran > s.backoff_reset_seconds:
            crashes = 0
        delay = min(s.backoff_initial_seconds * 2**crashes, s.backoff_max_seconds)
        if record.state == "terminated":
            record.last_terminated = record.terminated_json()
            message = (
                f"back-off {delay:.0f}s restarting failed container={record.name} pod={self.name}"
            )
            record.waiting("CrashLoopBackOff", message)
        self.request_status()
        await asyncio.sleep(delay)
        if record.last_terminated:
            record.restart_count += 1
        return crashes + 1

    async def _run_container(self, container: JSON, record: ContainerRecord) -> int | None:
        """Run the container once, probing it; its exit code, None if it could not start."""
        try:
            spec = await asyncio.to_thread(
                containers.launch_spec, self.rt, self.pod, container, self.paths, self.pod_ip
            )
        except (ConfigError, ApiError) as exc:
            record.waiting("CreateContainerConfigError", str(exc))
            self.request_status()
            await asyncio.sleep(2.0)
            return None
        if self.stopping():
            return None
        proc = await containers.spawn(spec, self.paths, container["name"])
        self.procs[container["name"]] = proc
        if self.stopping():
            containers.signal_group(proc.pid, signal.SIGKILL)
        record.running(proc.pid)
        self.request_status()
        probing = asyncio.ensure_future(
            containers.probe_loop(
                container=container,
                record=record,
                proc=proc,
                spec=spec,
                pod_ip=self.pod_ip,
                changed=self.request_status,
            )
        )
        code = await proc.wait()
        probing.cancel()
        self.procs.pop(container["name"], None)
        if self.stopping():
            return code
        message = containers.termination_message(container, self.paths, code)
        record.terminated(containers.exit_code(code), message)
        self.request_status()
        log.info("pod %s/%s: container %s exited %d", self.namespace, self.name, record.name, code)
        return record.exit_code

    # ---- status -------------------------------------------------------------------------
    def build_status(self) -> JSON:
        phase = pod_phase(self.policy, self.init, self.records, self.init_failed)
        return pod_status(
            phase=phase,
            pod_ip=self.pod_ip,
            host_ip=self.rt.settings.host_ip,
            start_time=self.start_time,
            init=self.init,
            containers=self.records,
            previous_conditions=self._conditions,
        )

    async def _status_writer(self) -> None:
        while True:
            await self._status_event.wait()
            self._status_event.clear()
            await asyncio.sleep(0.05)  # coalesce bursts of changes
            if self.stopping() or not self.pod_ip:
                continue
            status = self.build_status()
            if status == self._written:
                continue
            try:
                await asyncio.to_thread(self._patch_status, status)
                self._written = status
                self._conditions = status["conditions"]
            except ApiError as exc:
                if exc.status == 404:
                    return
                log.warning("pod %s/%s: status update failed: %s", self.namespace, self.name, exc)
                await asyncio.sleep(1.0)
                self._status_event.set()

    def _patch_status(self, status: JSON) -> None:
        path = f"/api/v1/namespaces/{self.namespace}/pods/{self.name}/status"
        self.rt.kube.merge_patch(path, {"metadata": {"uid": self.uid}, "status": status})
