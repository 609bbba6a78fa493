"""TensorProto / tf.Example ↔ numpy conversions for the gRPC adapter (pure functions)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from modelrollout.serving import protos
from modelrollout.serving.errors import InvalidArgument
from modelrollout.serving.model import Signature

types_pb2 = protos.load("tensorflow.core.framework.types_pb2")
tensor_pb2 = protos.load("tensorflow.core.framework.tensor_pb2")
meta_graph_pb2 = protos.load("tensorflow.core.protobuf.meta_graph_pb2")
metadata_pb2 = protos.load("tensorflow_serving.apis.get_model_metadata_pb2")

# dtype enum → (numpy dtype, TensorProto field holding typed values)
_NUMERIC: dict[int, tuple[Any, str]] = {
    types_pb2.DT_FLOAT: (np.float32, "float_val"),
    types_pb2.DT_DOUBLE: (np.float64, "double_val"),
    types_pb2.DT_INT32: (np.int32, "int_val"),
    types_pb2.DT_INT16: (np.int16, "int_val"),
    types_pb2.DT_INT8: (np.int8, "int_val"),
    types_pb2.DT_UINT8: (np.uint8, "int_val"),
    types_pb2.DT_INT64: (np.int64, "int64_val"),
    types_pb2.DT_BOOL: (np.bool_, "bool_val"),
}


def to_array(tensor: Any, alias: str) -> np.ndarray:
    """A numeric TensorProto as a float64 array of its declared shape."""
    entry = _NUMERIC.get(tensor.dtype)
    if entry is None:
        raise InvalidArgument(
            f"input '{alias}' has dtype {types_pb2.DataType.Name(tensor.dtype)}; expected "
            "DT_FLOAT, DT_DOUBLE or an integer type"
        )
    dtype, field = entry
    shape = [d.size for d in tensor.tensor_shape.dim]
    count = math.prod(shape)
    if tensor.tensor_content:
        if len(tensor.tensor_content) % np.dtype(dtype).itemsize:
            raise InvalidArgument(f"input '{alias}': tensor_content is not a whole element count")
        values = np.frombuffer(tensor.tensor_content, dtype=dtype)
    else:
        values = np.asarray(getattr(tensor, field), dtype=dtype)
    if values.size != count:
        if values.size == 1 and count > 1:  # TF fills a shape from one typed value
            values = np.full(count, values[0], dtype=dtype)
        else:
            raise InvalidArgument(
                f"input '{alias}' has {values.size} values but its shape {shape} needs {count}"
            )
    return values.reshape(shape).astype(np.float64, copy=False)


def from_array(array: Any, proto: Any = None) -> Any:
    """A numpy array as a TensorProto with typed value fields (what TF Serving sends).

    Fills ``proto`` in place when given (e.g. a response's map entry), saving a copy.
    """
    arr = np.asarray(array)
    if proto is None:
        proto = tensor_pb2.TensorProto()
    for size in arr.shape:
        proto.tensor_shape.dim.add().size = size
    kind = arr.dtype.kind
    if kind == "f":
        proto.dtype = types_pb2.DT_DOUBLE
        proto.double_val.extend(arr.astype(np.float64, copy=False).ravel().tolist())
    elif kind in "iu":
        proto.dtype = types_pb2.DT_INT64
        proto.int64_val.extend(arr.astype(np.int64, copy=False).ravel().tolist())
    elif kind == "b":
        proto.dtype = types_pb2.DT_BOOL
        proto.bool_val.extend(arr.ravel().tolist())
    else:
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(str(v).encode() for v in arr.ravel().tolist())
    return proto


def examples_to_dicts(examples: Any, context: Any | None) -> list[dict[str, list[float]]]:
    """tf.Examples (plus an optional context Example) → feature dicts of floats."""
    shared = _features(context, "context") if context is not None else {}
    result = []
    for i, example in enumerate(examples):
        features = dict(shared)
        features.update(_features(example, f"example {i}"))
        result.append(features)
    return result


def _features(example: Any, where: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        if kind == "float_list":
            out[name] = list(feature.float_list.value)
        elif kind == "int64_list":
            out[name] = [float(v) for v in feature.int64_list.value]
        elif kind == "bytes_list":
            raise InvalidArgument(f"{where} feature '{name}' is a bytes_list; expected numbers")
        else:
            out[name] = []
    return out


def signature_def_map(signatures: dict[str, Signature]) -> Any:
    """Our signature descriptions as TF Serving's SignatureDefMap proto."""
    result = metadata_pb2.SignatureDefMap()
    for key, sig in signatures.items():
        sig_def = result.signature_def[key]
        sig_def.method_name = sig.method_name
        for target, specs in ((sig_def.inputs, sig.inputs), (sig_def.outputs, sig.outputs)):
            for name, spec in specs.items():
                info = target[name]
                info.name = name
                info.dtype = types_pb2.DataType.Value(spec.dtype)
                for size in spec.shape:
                    info.tensor_shape.dim.add().size = size
    return result
