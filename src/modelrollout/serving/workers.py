"""Several server processes on the same ports: a supervisor, and metrics summed across them.

Python answers requests on one core per process. ``--workers N`` starts N
full server processes (spawned, so none inherits a gRPC or ONNX Runtime
thread from a fork) that bind both ports with SO_REUSEPORT; the kernel spreads
new connections across them. The supervisor forwards SIGTERM/SIGINT (each
worker then drains as a single server does) and, when one worker dies, stops
the others and exits with its code, so Kubernetes restarts the whole pod.

Metrics: every worker counts its own requests; ``/metrics``, whichever worker
answers it, asks every sibling for a snapshot over a Unix socket and renders
the sum. A sibling that does not answer within ``PEER_TIMEOUT_S`` is left out
of that scrape (its counters then look like a reset to Prometheus), and
``modelrollout_metrics_workers`` says how many were summed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelrollout import exitcodes
from modelrollout.serving.metrics import Metrics
from modelrollout.serving.settings import ServerSettings

log = logging.getLogger("modelrollout.serve")

PEER_TIMEOUT_S = 2.0
"""How long a scrape waits for each sibling's snapshot."""


@dataclass(frozen=True)
class WorkerSlot:
    """This process's place among the workers."""

    index: int
    count: int
    run_dir: str

    def socket_path(self, index: int) -> str:
        return os.path.join(self.run_dir, f"metrics-{index}.sock")


class PeerMetrics:
    """Serves this worker's snapshot to siblings and sums all of them on a scrape."""

    def __init__(self, metrics: Metrics, slot: WorkerSlot) -> None:
        self.metrics = metrics
        self.slot = slot
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        path = self.slot.socket_path(self.slot.index)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self.server = await asyncio.start_unix_server(self._answer, path=path)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _answer(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(json.dumps(self.metrics.snapshot()).encode())
            await writer.drain()
        finally:
            writer.close()

    async def _fetch(self, index: int) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(PEER_TIMEOUT_S):
                reader, writer = await asyncio.open_unix_connection(self.slot.socket_path(index))
                data = await reader.read()
                writer.close()
            snapshot: dict[str, Any] = json.loads(data)
            return snapshot
        except (OSError, TimeoutError, ValueError) as err:
            log.warning("metrics of worker %d unavailable: %s", index, err)
            return None

    async def render(self) -> str:
        """The sum over every worker that answered, in the Prometheus text format."""
        others = [i for i in range(self.slot.count) if i != self.slot.index]
        found = await asyncio.gather(*(self._fetch(i) for i in others))
        snapshots = [self.metrics.snapshot(), *(s for s in found if s is not None)]
        merged = Metrics.merged(self.metrics.model, self.metrics.version, snapshots)
        return merged.render() + (
            "# HELP modelrollout_metrics_workers Worker processes summed in this scrape.\n"
            "# TYPE modelrollout_metrics_workers gauge\n"
            f"modelrollout_metrics_workers{{{merged.base}}} {len(snapshots)}\n"
        )


def worker_main(settings: ServerSettings, slot: WorkerSlot, parent: int) -> None:
    """Entry point of one spawned worker process."""
    from modelrollout.serving.server import main

    _die_with_parent(parent)
    raise SystemExit(main(settings, slot))


def _die_with_parent(parent: int) -> None:
    """Linux: SIGTERM this worker when the supervisor dies, even by SIGKILL (no orphans
    holding the ports outside a container, where PID 1's death would end them anyway)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the supervisor died before prctl took effect
        raise SystemExit(exitcodes.FAILURE)


def supervise(settings: ServerSettings) -> int:
    """Run ``settings.workers`` worker processes until a signal or a worker's exit."""
    import multiprocessing
    from multiprocessing.connection import wait

    if settings.workers > 1 and (settings.grpc_port == 0 or settings.rest_port == 0):
        log.error("--workers > 1 needs fixed --grpc-port and --rest-port (0 would differ)")
        return exitcodes.USAGE
    run_dir = tempfile.mkdtemp(prefix="modelrollout-workers-")
    ctx = multiprocessing.get_context("spawn")
    one = dataclasses.replace(settings, workers=1)
    procs = [
        ctx.Process(
            target=worker_main,
            args=(one, WorkerSlot(i, settings.workers, run_dir), os.getpid()),
            name=f"worker-{i}",
        )
        for i in range(settings.workers)
    ]
    stopping: list[int] = []

    def forward(signum: int, _frame: Any) -> None:
        stopping.append(signum)
        for proc in procs:
            if proc.pid is not None and proc.exitcode is None:
                os.kill(proc.pid, signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for proc in procs:
            proc.start()
        log.info("supervisor %d: %d workers %s", os.getpid(), len(procs), [p.pid for p in procs])
        code = exitcodes.OK
        while any(p.exitcode is None for p in procs):
            wait([p.sentinel for p in procs if p.exitcode is None], timeout=1.0)
            for proc in procs:
                if proc.exitcode not in (None, 0) and code == exitcodes.OK:
                    code = proc.exitcode if proc.exitcode > 0 else exitcodes.FAILURE
                if proc.exitcode is not None and not stopping:
                    log.error("%s exited with %s: stopping the others", proc.name, proc.exitcode)
                    forward(signal.SIGTERM, None)
        return code
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutil.rmtree(Path(run_dir), ignore_errors=True)
