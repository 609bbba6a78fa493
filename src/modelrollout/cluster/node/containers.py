"""Starting, probing and stopping one container process (through the launcher)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import modelrollout
from modelrollout.cluster.node.expand import (
    JSON,
    ConfigError,
    EnvContext,
    container_argv,
    resolve_env,
)
from modelrollout.cluster.node.probes import Probe, ProbeState, parse_probe, run_probe
from modelrollout.cluster.node.settings import resolve_program
from modelrollout.cluster.node.status import ContainerRecord
from modelrollout.cluster.node.volumes import PodPaths, container_mounts

if TYPE_CHECKING:
    from modelrollout.cluster.node.pods import NodeRuntime

ENTRYPOINT = ["modelrollout"]
"""The project images' ENTRYPOINT, used when a container has no ``command``."""
UNSHARE = ["unshare", "--mount", "--uts", "--propagation", "private", "--"]
MESSAGE_LIMIT = 4096
LOG_FALLBACK_LINES = 80


def launch_spec(
    rt: NodeRuntime, pod: JSON, container: JSON, paths: PodPaths, pod_ip: str
) -> dict[str, Any]:
    """What the launcher needs: program, argv, environment, working dir, hostname, mounts."""
    base = dict(rt.base_env, HOSTNAME=pod["metadata"]["name"])
    ctx = EnvContext(pod_ip, rt.settings.host_ip, base, rt.settings.capacity)
    env = resolve_env(pod, container, ctx, rt.lookup)
    argv = container_argv(container, ENTRYPOINT, env)
    if not argv:
        raise ConfigError("container has neither command nor args")
    program = resolve_program(argv[0], rt.settings.venv, env.get("PATH", "")) or argv[0]
    return {
        "program": program,
        "argv": argv,
        "env": env,
        "workdir": container.get("workingDir", ""),
        "hostname": pod["metadata"]["name"],
        "venv": str(rt.settings.venv),
        "mounts": [asdict(m) for m in container_mounts(pod, container, paths)],
        "preserve": runtime_paths(rt.settings.venv),
    }


def runtime_paths(venv: Path) -> list[str]:
    """Host directories a project program needs, kept visible whatever the pod mounts."""
    package_root = Path(modelrollout.__file__).resolve().parent.parent
    paths = {str(venv), sys.prefix, sys.base_prefix, sys.exec_prefix, str(package_root)}
    return sorted(paths)


async def spawn(spec: dict[str, Any], paths: PodPaths, name: str) -> asyncio.subprocess.Process:
    """Start the launcher in new mount/UTS namespaces and its own session (process group)."""
    spec_file = paths.pod_dir / f"{name}.launch.json"
    spec_file.write_text(json.dumps(spec))
    message_file = paths.termination_file(name)
    message_file.parent.mkdir(parents=True, exist_ok=True)
    message_file.write_bytes(b"")
    paths.log_dir.mkdir(parents=True, exist_ok=True)
    with (paths.log_dir / f"{name}.log").open("ab") as log:
        log.write(f"==== {time.strftime('%Y-%m-%dT%H:%M:%S')} start {spec['argv']}\n".encode())
        log.flush()
        launcher = [sys.executable, "-m", "modelrollout.cluster.node.launch", str(spec_file)]
        return await asyncio.create_subprocess_exec(
            *UNSHARE,
            *launcher,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )


def signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def kill_all(procs: dict[str, asyncio.subprocess.Process], grace: float) -> None:
    """SIGTERM every container's process group; SIGKILL what is still there after grace."""
    running = list(procs.values())
    for proc in running:
        signal_group(proc.pid, signal.SIGTERM)
    waits = [asyncio.ensure_future(p.wait()) for p in running]
    if waits:
        _, pending = await asyncio.wait(waits, timeout=max(grace, 0.0))
        for proc in running:
            signal_group(proc.pid, signal.SIGKILL)
        if pending:
            await asyncio.wait(pending, timeout=10.0)


def exit_code(returncode: int) -> int:
    """A shell-style exit code: 128 + signal number for a process killed by a signal."""
    return 128 - returncode if returncode < 0 else returncode


def termination_message(container: JSON, paths: PodPaths, returncode: int) -> str:
    """The container's termination message, or its log tail under FallbackToLogsOnError."""
    with contextlib.suppress(OSError):
        data = paths.termination_file(container["name"]).read_bytes()[:MESSAGE_LIMIT]
        if data:
            return data.decode("utf-8", "replace")
    if container.get("terminationMessagePolicy") == "FallbackToLogsOnError" and returncode != 0:
        with contextlib.suppress(OSError):
            lines = (paths.log_dir / f"{container['name']}.log").read_bytes().splitlines()
            tail = b"\n".join(lines[-LOG_FALLBACK_LINES:])[-MESSAGE_LIMIT:]
            return tail.decode("utf-8", "replace")
    return ""


def exec_runner(pid: int, spec: dict[str, Any]) -> Callable[[tuple[str, ...], float], Any]:
    """Runs an exec probe inside the container's mount and UTS namespaces."""

    async def run(command: tuple[str, ...], timeout: float) -> tuple[int, str]:
        if not command:
            return 1, "exec probe without command"
        env = spec["env"]
        venv = Path(spec["venv"])
        program = resolve_program(command[0], venv, env.get("PATH", "")) or command[0]
        argv = ["nsenter", f"--target={pid}", "--mount", "--uts", "--", program, *command[1:]]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=env,
            cwd="/",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return 1, f"timed out after {timeout:.0f}s"
        return proc.returncode or 0, out.decode("utf-8", "replace")

    return run


async def probe_loop(
    *,
    container: JSON,
    record: ContainerRecord,
    proc: asyncio.subprocess.Process,
    spec: dict[str, Any],
    pod_ip: str,
    changed: Callable[[], None],
) -> None:
    """Startup, then readiness and liveness probes, while the process runs."""
    try:
        startup = parse_probe(container.get("startupProbe"), container)
        readiness = parse_probe(container.get("readinessProbe"), container)
        liveness = parse_probe(container.get("livenessProbe"), container)
    except ConfigError as exc:
        record.message = str(exc)
        return
    run_exec = exec_runner(proc.pid, spec)
    if startup is not None and not await _until_verdict(startup, pod_ip, run_exec):
        signal_group(proc.pid, signal.SIGTERM)
        return
    if readiness is None:
        record.ready = True
        changed()
    tasks = []
    if readiness is not None:
        tasks.append(_readiness(readiness, record, pod_ip, run_exec, changed))
    if liveness is not None:
        tasks.append(_liveness(liveness, proc.pid, pod_ip, run_exec))
    if tasks:
        await asyncio.gather(*tasks)


async def _until_verdict(probe: Probe, pod_ip: str, run_exec: Any) -> bool:
    state = ProbeState(probe)
    await asyncio.sleep(probe.initial_delay)
    while True:
        ok, message = await run_probe(probe, pod_ip, run_exec)
        verdict = state.record(ok, message)
        if verdict is not None:
            return verdict
        await asyncio.sleep(probe.period)


async def _readiness(
    probe: Probe, record: ContainerRecord, pod_ip: str, run_exec: Any, changed: Callable[[], None]
) -> None:
    state = ProbeState(probe)
    await asyncio.sleep(probe.initial_delay)
    while True:
        ok, message = await run_probe(probe, pod_ip, run_exec)
        verdict = state.record(ok, message)
        if verdict is not None and verdict != record.ready:
            record.ready = verdict
            changed()
        await asyncio.sleep(probe.period)


async def _liveness(probe: Probe, pid: int, pod_ip: str, run_exec: Any) -> None:
    """A failed liveness probe stops the container; the restart policy takes over."""
    state = ProbeState(probe)
    await asyncio.sleep(probe.initial_delay)
    while True:
        ok, message = await run_probe(probe, pod_ip, run_exec)
        if state.record(ok, message) is False:
            signal_group(pid, signal.SIGTERM)
            return
        await asyncio.sleep(probe.period)
