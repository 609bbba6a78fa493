"""``modelrollout serve``: bind, load, serve, drain — the process lifecycle.

The listeners bind before the model loads, so health checks answer
NOT_SERVING (gRPC) and 503/LOADING (REST) meanwhile; a load failure writes the
reason to the termination log and exits 4 without ever serving a prediction.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from modelrollout import exitcodes
from modelrollout.serving.settings import ServerSettings

if TYPE_CHECKING:
    from modelrollout.serving.dataplane import DataPlane
    from modelrollout.serving.grpc_server import GrpcServer
    from modelrollout.serving.model import ServedModel
    from modelrollout.serving.rest import RestServer

log = logging.getLogger("modelrollout.serve")


def main(settings: ServerSettings) -> int:
    """Run the server until SIGTERM/SIGINT; return the process exit code."""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(settings.blas_threads))
    return asyncio.run(_serve(settings))


def load_model(settings: ServerSettings) -> ServedModel:
    """Fetch → verify sha256 → deserialise with the safety policy → describe → warm up."""
    from modelrollout.serving import loading
    from modelrollout.serving.model import ServedModel, SklearnRuntime, describe

    path = loading.fetch(
        settings.model_uri,
        timeout_s=settings.download_timeout_s,
        max_bytes=settings.max_artifact_bytes,
        cache_dir=settings.cache_dir,
    )
    artifact = loading.verify(path, settings.sha256)
    fmt = loading.detect_format(path, settings.model_format)
    estimator = loading.deserialize(
        artifact,
        fmt=fmt,
        trusted=settings.trusted_types,
        allow_unsafe_pickle=settings.allow_unsafe_pickle,
    )
    loading.remove_download(path, settings.model_uri)
    try:
        info = describe(estimator)
    except TypeError as err:
        raise loading.LoadError(str(err)) from err
    model = ServedModel(SklearnRuntime(estimator), info)
    log.info(
        "loaded %s (%s, %d bytes, sha256 %s): %s, %d features",
        settings.model_uri,
        fmt,
        artifact.size,
        artifact.sha256,
        info.estimator_type,
        info.n_features,
    )
    _warm_up(model)
    return model


def _warm_up(model: ServedModel) -> None:
    """One prediction on zeros, so the first real request does not pay lazy initialisation."""
    import numpy as np

    if model.info.n_features <= 0:
        return
    try:
        model.predict(np.zeros((1, model.info.n_features)))
    except Exception as err:  # a model may reject zeros; that is not a load failure
        log.info("warm-up prediction skipped: %s", err)


async def _serve(settings: ServerSettings) -> int:
    from modelrollout.serving.dataplane import DataPlane
    from modelrollout.serving.grpc_server import GrpcServer
    from modelrollout.serving.loading import LoadError, write_termination_message
    from modelrollout.serving.metrics import Metrics
    from modelrollout.serving.rest import RestServer

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    executor = ThreadPoolExecutor(max_workers=max(1, settings.workers), thread_name_prefix="model")
    plane = DataPlane(
        name=settings.model_name,
        version=settings.model_version,
        labels=settings.version_labels,
        metrics=Metrics(settings.model_name, settings.model_version),
        executor=executor,
        max_concurrency=settings.max_concurrency,
        inline_rows=settings.inline_rows,
    )
    grpc_server: GrpcServer | None = None
    rest_server: RestServer | None = None
    try:
        if settings.grpc_port:
            grpc_server = GrpcServer(
                plane,
                host=settings.host,
                port=settings.grpc_port,
                max_message_bytes=settings.max_request_bytes,
            )
            await grpc_server.start()
        if settings.rest_port:
            rest_server = RestServer(
                plane,
                host=settings.host,
                port=settings.rest_port,
                max_body_bytes=settings.max_request_bytes,
            )
            await rest_server.start()
    except (OSError, RuntimeError) as err:
        log.error("cannot listen on %s: %s", settings.host, err)
        write_termination_message(settings.termination_log_path, f"cannot listen: {err}")
        return exitcodes.FAILURE
    log.info(
        "listening on %s: gRPC %s, REST %s; loading model %s version %d from %s",
        settings.host,
        grpc_server.port if grpc_server else "off",
        rest_server.port if rest_server else "off",
        settings.model_name,
        settings.model_version,
        settings.model_uri,
    )
    started = time.perf_counter()
    loader: asyncio.Future[ServedModel] = loop.run_in_executor(executor, load_model, settings)
    stopper = asyncio.ensure_future(stop.wait())
    racers: list[asyncio.Future[Any]] = [loader, stopper]
    await asyncio.wait(racers, return_when=asyncio.FIRST_COMPLETED)
    if not loader.done():
        log.info("stopped while loading")
        await _shutdown(grpc_server, rest_server, 0.0)
        return exitcodes.OK
    try:
        model = loader.result()
    except LoadError as err:
        return await _fail(
            settings,
            plane=plane,
            grpc_server=grpc_server,
            rest_server=rest_server,
            reason=str(err),
            code=exitcodes.BAD_INPUT,
        )
    except Exception as err:
        reason = f"loading the model failed: {type(err).__name__}: {err}"
        return await _fail(
            settings,
            plane=plane,
            grpc_server=grpc_server,
            rest_server=rest_server,
            reason=reason,
            code=exitcodes.FAILURE,
        )
    plane.metrics.load_seconds = time.perf_counter() - started
    plane.set_model(model)
    if grpc_server:
        await grpc_server.set_serving(True)
    log.info(
        "serving %s version %d (%.2f s to load)",
        settings.model_name,
        settings.model_version,
        plane.metrics.load_seconds,
    )
    await stopper
    log.info("signal received: draining (%d in flight)", plane.metrics.in_flight)
    plane.start_draining()
    await _shutdown(grpc_server, rest_server, settings.drain_timeout_s)
    executor.shutdown(wait=True)
    log.info("stopped")
    return exitcodes.OK


async def _fail(
    settings: ServerSettings,
    *,
    plane: DataPlane,
    grpc_server: GrpcServer | None,
    rest_server: RestServer | None,
    reason: str,
    code: int,
) -> int:
    from modelrollout.serving.loading import write_termination_message

    plane.set_failed(reason)
    log.error("cannot serve %s: %s", settings.model_name, reason)
    write_termination_message(settings.termination_log_path, reason)
    await _shutdown(grpc_server, rest_server, 0.0)
    return code


async def _shutdown(
    grpc_server: GrpcServer | None, rest_server: RestServer | None, grace_s: float
) -> None:
    tasks = []
    if grpc_server is not None:
        tasks.append(grpc_server.stop(grace_s))
    if rest_server is not None:
        tasks.append(rest_server.stop(grace_s))
    await asyncio.gather(*tasks)
