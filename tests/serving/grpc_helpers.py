"""Request builders over the tensorflow-serving-api stubs (loaded TensorFlow-free)."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelrollout.serving import protos

predict_pb2 = protos.load("tensorflow_serving.apis.predict_pb2")
classification_pb2 = protos.load("tensorflow_serving.apis.classification_pb2")
regression_pb2 = protos.load("tensorflow_serving.apis.regression_pb2")
metadata_pb2 = protos.load("tensorflow_serving.apis.get_model_metadata_pb2")
status_pb2 = protos.load("tensorflow_serving.apis.get_model_status_pb2")
prediction_service_pb2_grpc = protos.load("tensorflow_serving.apis.prediction_service_pb2_grpc")
model_service_pb2_grpc = protos.load("tensorflow_serving.apis.model_service_pb2_grpc")
types_pb2 = protos.load("tensorflow.core.framework.types_pb2")


def spec(
    target: Any, name: str, version: int | None = None, label: str | None = None, sig: str = ""
) -> None:
    target.name = name
    if version is not None:
        target.version.value = version
    if label is not None:
        target.version_label = label
    target.signature_name = sig


def predict_request(
    name: str,
    x: np.ndarray,
    *,
    version: int | None = None,
    label: str | None = None,
    alias: str = "inputs",
    as_content: bool = False,
) -> Any:
    request = predict_pb2.PredictRequest()
    spec(request.model_spec, name, version, label)
    tensor = request.inputs[alias]
    for size in x.shape:
        tensor.tensor_shape.dim.add().size = size
    if x.dtype == np.float32:
        tensor.dtype = types_pb2.DT_FLOAT
        if as_content:
            tensor.tensor_content = x.tobytes()
        else:
            tensor.float_val.extend(x.ravel().tolist())
    elif x.dtype.kind in "iu":
        tensor.dtype = types_pb2.DT_INT64
        tensor.int64_val.extend(x.ravel().tolist())
    else:
        tensor.dtype = types_pb2.DT_DOUBLE
        if as_content:
            tensor.tensor_content = np.ascontiguousarray(x, dtype=np.float64).tobytes()
        else:
            tensor.double_val.extend(x.ravel().tolist())
    return request


def examples_input(target: Any, x: np.ndarray) -> None:
    for row in x:
        example = target.example_list.examples.add()
        example.features.feature["inputs"].float_list.value.extend(row.tolist())


def output_array(tensor: Any) -> np.ndarray:
    shape = [d.size for d in tensor.tensor_shape.dim]
    if tensor.dtype == types_pb2.DT_DOUBLE:
        return np.asarray(tensor.double_val, dtype=np.float64).reshape(shape)
    if tensor.dtype == types_pb2.DT_INT64:
        return np.asarray(tensor.int64_val, dtype=np.int64).reshape(shape)
    if tensor.dtype == types_pb2.DT_STRING:
        return np.asarray([v.decode() for v in tensor.string_val]).reshape(shape)
    raise AssertionError(f"unexpected dtype {tensor.dtype}")
