"""``modelrollout serve``: bind, load, serve, drain — the process lifecycle.

The listeners bind before the model loads, so health checks answer
NOT_SERVING (gRPC) and 503/LOADING (REST) meanwhile; a load failure writes the
reason to the termination log and exits 4 without ever serving a prediction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from modelrollout import exitcodes
from modelrollout.serving.settings import ServerSettings

if TYPE_CHECKING:
    from modelrollout.serving.dataplane import DataPlane
    from modelrollout.serving.grpc_server import GrpcServer
    from modelrollout.serving.model import ServedModel
    from modelrollout.serving.rest import RestServer
    from modelrollout.serving.workers import PeerMetrics, WorkerSlot

log = logging.getLogger("modelrollout.serve")


def main(settings: ServerSettings, slot: WorkerSlot | None = None) -> int:
    """Run the server (or, with ``--workers`` > 1, its supervisor) until SIGTERM/SIGINT."""
    several = settings.workers > 1 or slot is not None
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s "
        + ("%(processName)s " if several else "")
        + "%(name)s: %(message)s",
        stream=sys.stderr,
    )
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(settings.blas_threads))
    if settings.workers > 1 and slot is None:
        from modelrollout.serving.workers import supervise

        return supervise(settings)
    return asyncio.run(_serve(settings, slot))


def load_model(settings: ServerSettings) -> ServedModel:
    """Fetch → verify sha256 → deserialise with the safety policy → pick a runtime → warm up."""
    from modelrollout.serving import loading

    path = loading.fetch(
        settings.model_uri,
        timeout_s=settings.download_timeout_s,
        max_bytes=settings.max_artifact_bytes,
        cache_dir=settings.cache_dir,
    )
    artifact = loading.verify(path, settings.sha256)
    fmt = loading.detect_format(path, settings.model_format)
    if fmt == "onnx":
        model = _onnx_model(settings, loading.read_onnx(artifact))
    else:
        estimator = loading.deserialize(
            artifact,
            fmt=fmt,
            trusted=settings.trusted_types,
            allow_unsafe_pickle=settings.allow_unsafe_pickle,
        )
        model = _sklearn_model(settings, estimator)
    loading.remove_download(path, settings.model_uri)
    log.info(
        "loaded %s (%s, %d bytes, sha256 %s): %s, %d features, runtime %s",
        settings.model_uri,
        fmt,
        artifact.size,
        artifact.sha256,
        model.info.estimator_type,
        model.info.n_features,
        model.runtime_info.runtime,
    )
    _warm_up(model)
    return model


def _onnx_model(settings: ServerSettings, data: bytes) -> ServedModel:
    from modelrollout.serving.compiled import OnnxRuntime, describe_onnx
    from modelrollout.serving.loading import LoadError
    from modelrollout.serving.model import RuntimeInfo, ServedModel

    if settings.runtime == "sklearn":
        raise LoadError("--runtime sklearn cannot serve an .onnx artifact; use onnx or auto")
    try:
        runtime = OnnxRuntime(data)
        info = describe_onnx(data, runtime)
    except Exception as err:
        raise LoadError(f"cannot serve the ONNX model: {type(err).__name__}: {err}") from err
    return ServedModel(runtime, info, RuntimeInfo("onnx", settings.runtime))


def _sklearn_model(settings: ServerSettings, estimator: Any) -> ServedModel:
    from modelrollout.serving import loading, runtimes
    from modelrollout.serving.model import ServedModel, describe

    try:
        info = describe(estimator)
    except TypeError as err:
        raise loading.LoadError(str(err)) from err
    probe_path = None
    if settings.probe_data and settings.runtime == "auto":
        probe_path = str(
            loading.fetch(
                settings.probe_data,
                timeout_s=settings.download_timeout_s,
                max_bytes=settings.max_artifact_bytes,
                cache_dir=settings.cache_dir,
            )
        )
    choice = runtimes.Choice(
        requested=settings.runtime,
        probe_rows=settings.probe_rows,
        atol=settings.equivalence_atol,
        rtol=settings.equivalence_rtol,
        probe_path=probe_path,
    )
    try:
        runtime, runtime_info = runtimes.select(estimator, info, choice)
    except ValueError as err:
        raise loading.LoadError(str(err)) from err
    return ServedModel(runtime, info, runtime_info)


def _warm_up(model: ServedModel) -> None:
    """One prediction on zeros, so the first real request does not pay lazy initialisation."""
    import numpy as np

    if model.info.n_features <= 0:
        return
    try:
        model.predict(np.zeros((1, model.info.n_features)))
    except Exception as err:  # a model may reject zeros; that is not a load failure
        log.info("warm-up prediction skipped: %s", err)


def _load_in_daemon_thread(
    loop: asyncio.AbstractEventLoop, settings: ServerSettings
) -> asyncio.Future[ServedModel]:
    """Run ``load_model`` on a daemon thread; its outcome arrives as a future on ``loop``."""
    future: asyncio.Future[ServedModel] = loop.create_future()

    def settle(result: ServedModel | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def work() -> None:
        try:
            model = load_model(settings)
        except BaseException as err:
            outcome: tuple[ServedModel | None, BaseException | None] = (None, err)
        else:
            outcome = (model, None)
        with contextlib.suppress(RuntimeError):  # the loop is gone: we are exiting
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=work, name="model-loader", daemon=True).start()
    return future


async def _serve(settings: ServerSettings, slot: WorkerSlot | None) -> int:
    from modelrollout.serving.dataplane import DataPlane
    from modelrollout.serving.metrics import Metrics
    from modelrollout.serving.workers import PeerMetrics

    executor = ThreadPoolExecutor(max_workers=max(1, settings.threads), thread_name_prefix="model")
    plane = DataPlane(
        name=settings.model_name,
        version=settings.model_version,
        labels=settings.version_labels,
        metrics=Metrics(settings.model_name, settings.model_version),
        executor=executor,
        max_concurrency=settings.max_concurrency,
        inline_rows=settings.inline_rows,
    )
    peers = PeerMetrics(plane.metrics, slot) if slot is not None else None
    try:
        return await _Process(settings, plane, executor, peers).run()
    finally:
        executor.shutdown(wait=True)


class _Process:
    """The lifecycle: listen → load (racing a stop signal) → serve → drain.

    A worker among several (``peers`` set) loads *before* it listens: the kernel
    spreads connections over every process bound to the port, so a bound but still
    loading worker would answer 503 next to ready ones.
    """

    def __init__(
        self,
        settings: ServerSettings,
        plane: DataPlane,
        executor: Executor,
        peers: PeerMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.peers = peers
        self.plane = plane
        self.executor = executor
        self.grpc: GrpcServer | None = None
        self.rest: RestServer | None = None
        self.stop = asyncio.Event()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        if self.peers is not None:
            await self.peers.start()
        try:
            code = await self._start()
            if code is not None:
                return code
            await self.stop.wait()
            await self._drain()
            return exitcodes.OK
        finally:
            if self.peers is not None:
                await self.peers.stop()

    async def _start(self) -> int | None:
        """Listen and load (in the order the class doc gives); an exit code on failure."""
        if self.peers is None:
            code = await self._bind()
            return code if code is not None else await self._load()
        code = await self._load()
        if code is not None or self.stop.is_set():
            return code
        return await self._bind()

    async def _bind(self) -> int | None:
        try:
            await self._listen()
        except (OSError, RuntimeError) as err:
            return await self._fail(
                f"cannot listen on {self.settings.host}: {err}", exitcodes.FAILURE
            )
        return None

    async def _listen(self) -> None:
        from modelrollout.serving.grpc_server import GrpcServer
        from modelrollout.serving.rest import RestServer

        s = self.settings
        if s.grpc_port:
            self.grpc = GrpcServer(
                self.plane,
                host=s.host,
                port=s.grpc_port,
                max_message_bytes=s.max_request_bytes,
                reuse_port=self.peers is not None,
            )
            await self.grpc.start()
        if s.rest_port:
            self.rest = RestServer(
                self.plane,
                host=s.host,
                port=s.rest_port,
                max_body_bytes=s.max_request_bytes,
                idle_timeout_s=s.idle_timeout_s,
                max_connections=s.max_connections,
                reuse_port=self.peers is not None,
                metrics_text=self.peers.render if self.peers is not None else None,
            )
            await self.rest.start()
        log.info(
            "listening on %s: gRPC %s, REST %s; model %s version %d from %s %s",
            s.host,
            self.grpc.port if self.grpc else "off",
            self.rest.port if self.rest else "off",
            s.model_name,
            s.model_version,
            s.model_uri,
            "loaded" if self.plane.ready else "loading",
        )

    async def _load(self) -> int | None:
        """Load on a worker thread; an exit code when the process must end instead of serving."""
        from modelrollout.serving.loading import LoadError

        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        # A daemon thread, not the executor: a SIGTERM during a slow download or load
        # must end the process now, not after the load finishes.
        loader = _load_in_daemon_thread(loop, self.settings)
        stopper = asyncio.ensure_future(self.stop.wait())
        racers: list[asyncio.Future[Any]] = [loader, stopper]
        await asyncio.wait(racers, return_when=asyncio.FIRST_COMPLETED)
        if not loader.done():
            log.info("stopped while loading")
            await self._shutdown(0.0)
            return exitcodes.OK
        stopper.cancel()
        try:
            model = loader.result()
        except LoadError as err:
            return await self._fail(str(err), exitcodes.BAD_INPUT)
        except Exception as err:
            reason = f"loading the model failed: {type(err).__name__}: {err}"
            return await self._fail(reason, exitcodes.FAILURE)
        self.plane.metrics.load_seconds = time.perf_counter() - started
        self.plane.set_model(model)
        if self.grpc:
            await self.grpc.set_serving(True)
        log.info(
            "serving %s version %d (%.2f s to load)",
            self.settings.model_name,
            self.settings.model_version,
            self.plane.metrics.load_seconds,
        )
        return None

    async def _drain(self) -> None:
        delay = self.settings.shutdown_delay_s
        if delay > 0:
            log.info("signal received: serving %.1f s more before draining", delay)
            await asyncio.sleep(delay)
        log.info("signal received: draining (%d in flight)", self.plane.metrics.in_flight)
        self.plane.start_draining()
        await self._shutdown(self.settings.drain_timeout_s)
        log.info("stopped")

    async def _fail(self, reason: str, code: int) -> int:
        from modelrollout.serving.loading import write_termination_message

        self.plane.set_failed(reason)
        log.error("cannot serve %s: %s", self.settings.model_name, reason)
        write_termination_message(self.settings.termination_log_path, reason)
        await self._shutdown(0.0)
        return code

    async def _shutdown(self, grace_s: float) -> None:
        tasks = []
        if self.grpc is not None:
            tasks.append(self.grpc.stop(grace_s))
        if self.rest is not None:
            tasks.append(self.rest.stop(grace_s))
        await asyncio.gather(*tasks)
