"""gRPC adapter: TF Serving's PredictionService and ModelService, plus grpc.health.v1.

Thin: decode the request, call the data plane, encode the response. Errors
are mapped to gRPC status codes in one place (``_call``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from modelrollout.serving import protos, tensors
from modelrollout.serving.dataplane import DataPlane, ModelSpec
from modelrollout.serving.errors import InvalidArgument, ServingError, Unimplemented
from modelrollout.serving.model import INPUT_NAME

predict_pb2 = protos.load("tensorflow_serving.apis.predict_pb2")
classification_pb2 = protos.load("tensorflow_serving.apis.classification_pb2")
struct_pb2 = protos.load("google.protobuf.struct_pb2")
regression_pb2 = protos.load("tensorflow_serving.apis.regression_pb2")
metadata_pb2 = protos.load("tensorflow_serving.apis.get_model_metadata_pb2")
status_pb2 = protos.load("tensorflow_serving.apis.get_model_status_pb2")
model_service_pb2_grpc = protos.load("tensorflow_serving.apis.model_service_pb2_grpc")
prediction_service_pb2_grpc = protos.load("tensorflow_serving.apis.prediction_service_pb2_grpc")

SIGNATURE_DEF_FIELD = "signature_def"
RUNTIME_FIELD = "runtime"
"""Metadata entry (a google.protobuf.Struct) naming the runtime and any fallback reason."""


def model_spec(request: Any) -> ModelSpec:
    """The protocol-free ModelSpec of a request (version and label are a oneof on the wire)."""
    if not request.HasField("model_spec"):
        raise InvalidArgument("Missing ModelSpec")
    spec = request.model_spec
    choice = spec.WhichOneof("version_choice")
    return ModelSpec(
        name=spec.name,
        version=spec.version.value if choice == "version" else None,
        label=spec.version_label if choice == "version_label" else None,
        signature_name=spec.signature_name,
    )


def predict_input(request: Any) -> Any:
    """The one input tensor of ``serving_default`` as an array."""
    given = set(request.inputs)
    if given != {INPUT_NAME}:
        extra = ",".join(sorted(given - {INPUT_NAME}))
        missing = "" if INPUT_NAME in given else INPUT_NAME
        raise InvalidArgument(
            f"input size does not match signature: {len(given)}!=1 "
            f"len({{{','.join(sorted(given))}}}) != len({{{INPUT_NAME}}}). "
            f"Sent extra: {{{extra}}}. Missing but required: {{{missing}}}."
        )
    return tensors.to_array(request.inputs[INPUT_NAME], INPUT_NAME)


def _fill_spec(target: Any, name: str, version: int, signature_name: str) -> None:
    target.name = name
    target.version.value = version
    target.signature_name = signature_name


class Servicer:
    """PredictionService and ModelService over one data plane."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self._metadata_cache: Any = None

    async def _call(
        self,
        method: str,
        context: grpc.aio.ServicerContext,
        handler: Callable[[], Awaitable[Any]],
        *,
        admit: bool,
    ) -> Any:
        """Run one RPC: admission, errors → status codes, metrics."""
        start = time.perf_counter()
        code = "OK"
        admitted = False
        try:
            if admit:
                self.plane.admit()
                admitted = True
            return await handler()
        except ServingError as err:
            code = err.code
            await context.abort(grpc.StatusCode[err.code], err.message)
        finally:
            if admitted:
                self.plane.release()
            self.plane.metrics.record(method, "grpc", code, time.perf_counter() - start)

    async def Predict(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def handle() -> Any:
            spec = model_spec(request)
            x = predict_input(request)
            wanted = frozenset(request.output_filter) if request.output_filter else None
            outputs = await self.plane.predict(spec, x, wanted)
            response = predict_pb2.PredictResponse()
            _fill_spec(response.model_spec, spec.name, self.plane.version, "serving_default")
            for key, value in outputs.items():
                tensors.from_array(value, response.outputs[key])
            return response

        return await self._call("predict", context, handle, admit=True)

    async def Classify(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def handle() -> Any:
            spec = model_spec(request)
            x = self._examples(spec, request)
            labels, scores, predicted = await self.plane.classify(spec, x)
            response = classification_pb2.ClassificationResponse()
            _fill_spec(response.model_spec, spec.name, self.plane.version, "classification")
            for row in range(x.shape[0]):
                result = response.result.classifications.add()
                if scores is None:
                    result.classes.add().label = str(predicted[row])
                    continue
                for label, score in zip(labels, scores[row].tolist(), strict=True):
                    cls = result.classes.add()
                    cls.label = label
                    cls.score = score
            return response

        return await self._call("classify", context, handle, admit=True)

    async def Regress(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def handle() -> Any:
            spec = model_spec(request)
            x = self._examples(spec, request)
            values = await self.plane.regress(spec, x)
            response = regression_pb2.RegressionResponse()
            _fill_spec(response.model_spec, spec.name, self.plane.version, "regression")
            for value in values.tolist():
                response.result.regressions.add().value = value
            return response

        return await self._call("regress", context, handle, admit=True)

    def _examples(self, spec: ModelSpec, request: Any) -> Any:
        model = self.plane.resolve(spec)
        kind = request.input.WhichOneof("kind")
        if kind == "example_list":
            dicts = tensors.examples_to_dicts(request.input.example_list.examples, None)
        elif kind == "example_list_with_context":
            lists = request.input.example_list_with_context
            dicts = tensors.examples_to_dicts(lists.examples, lists.context)
        else:
            raise InvalidArgument("Invalid argument: Input is empty.")
        return model.examples_to_rows(dicts)

    async def MultiInference(self, _request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def handle() -> Any:
            raise Unimplemented("MultiInference is not supported by this server")

        return await self._call("multi_inference", context, handle, admit=False)

    async def GetModelMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def handle() -> Any:
            spec = model_spec(request)
            if not request.metadata_field:
                raise InvalidArgument(
                    "GetModelMetadataRequest must specify at least one metadata_field"
                )
            for field in request.metadata_field:
                if field != SIGNATURE_DEF_FIELD:
                    raise InvalidArgument(f"Metadata field {field} is not supported")
            version, signatures = self.plane.metadata(spec)
            if self._metadata_cache is None:
                self._metadata_cache = tensors.signature_def_map(signatures)
            response = metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = spec.name
            response.model_spec.version.value = version
            response.metadata[SIGNATURE_DEF_FIELD].Pack(self._metadata_cache)
            runtime = struct_pb2.Struct()
            runtime.update(self.plane.runtime_metadata())
            response.metadata[RUNTIME_FIELD].Pack(runtime)
            return response

        return await self._call("metadata", context, handle, admit=False)

    async def GetModelStatus(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def handle() -> Any:
            response = status_pb2.GetModelStatusResponse()
            for entry in self.plane.status(model_spec(request)):
                status = response.model_version_status.add()
                status.version = entry.version
                status.state = status_pb2.ModelVersionStatus.State.Value(entry.state.value)
                status.status.error_code = _ERROR_CODES.get(entry.error_code, 2)
                status.status.error_message = entry.error_message
            return response

        return await self._call("status", context, handle, admit=False)

    async def HandleReloadConfigRequest(
        self, _request: Any, context: grpc.aio.ServicerContext
    ) -> Any:
        async def handle() -> Any:
            raise Unimplemented("this server serves one model version; reload is not supported")

        return await self._call("reload_config", context, handle, admit=False)


_ERROR_CODES = {"OK": 0, "UNKNOWN": 2}


class GrpcServer:
    """The gRPC listener with health reporting tied to the data plane's readiness."""

    def __init__(
        self,
        plane: DataPlane,
        *,
        host: str,
        port: int,
        max_message_bytes: int,
        reuse_port: bool = False,
    ) -> None:
        self.plane = plane
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                # several worker processes share the port; a lone server must own it
                ("grpc.so_reuseport", 1 if reuse_port else 0),
            ],
            maximum_concurrent_rpcs=plane.max_concurrency + 32,
        )
        servicer = Servicer(plane)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer, self.server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(servicer, self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = self.server.add_insecure_port(f"{_host(host)}:{port}")

    async def start(self) -> None:
        await self.set_serving(self.plane.ready)
        await self.server.start()

    async def set_serving(self, serving: bool) -> None:
        """Health for "" and for the model name: SERVING only while the model answers."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in ("", self.plane.name):
            await self.health.set(service, status)

    async def stop(self, grace_s: float) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
