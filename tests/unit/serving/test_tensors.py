"""TensorProto and tf.Example conversions."""

from __future__ import annotations

import numpy as np
import pytest

from modelrollout.serving import protos, tensors
from modelrollout.serving.errors import InvalidArgument
from modelrollout.serving.model import Signature, TensorSpec

types_pb2 = protos.load("tensorflow.core.framework.types_pb2")
tensor_pb2 = protos.load("tensorflow.core.framework.tensor_pb2")
example_pb2 = protos.load("tensorflow.core.example.example_pb2")


def proto(dtype: int, shape: list[int]) -> object:
    t = tensor_pb2.TensorProto(dtype=dtype)
    for s in shape:
        t.tensor_shape.dim.add().size = s
    return t


def test_typed_values_and_content() -> None:
    t = proto(types_pb2.DT_FLOAT, [2, 2])
    t.float_val.extend([1, 2, 3, 4])  # type: ignore[attr-defined]
    np.testing.assert_array_equal(tensors.to_array(t, "x"), [[1, 2], [3, 4]])
    c = proto(types_pb2.DT_DOUBLE, [1, 3])
    c.tensor_content = np.array([1.5, 2.5, 3.5]).tobytes()  # type: ignore[attr-defined]
    got = tensors.to_array(c, "x")
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, [[1.5, 2.5, 3.5]])
    i = proto(types_pb2.DT_INT32, [1, 2])
    i.int_val.extend([7, 8])  # type: ignore[attr-defined]
    np.testing.assert_array_equal(tensors.to_array(i, "x"), [[7.0, 8.0]])


def test_single_value_fills_shape() -> None:
    t = proto(types_pb2.DT_DOUBLE, [2, 2])
    t.double_val.append(3.0)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(tensors.to_array(t, "x"), np.full((2, 2), 3.0))


def test_mismatches() -> None:
    t = proto(types_pb2.DT_DOUBLE, [2, 2])
    t.double_val.extend([1, 2, 3])  # type: ignore[attr-defined]
    with pytest.raises(InvalidArgument, match="has 3 values but its shape"):
        tensors.to_array(t, "x")
    s = proto(types_pb2.DT_STRING, [1])
    with pytest.raises(InvalidArgument, match="DT_STRING"):
        tensors.to_array(s, "x")
    c = proto(types_pb2.DT_DOUBLE, [1])
    c.tensor_content = b"123"  # type: ignore[attr-defined]
    with pytest.raises(InvalidArgument, match="whole element count"):
        tensors.to_array(c, "x")


def test_from_array_dtypes() -> None:
    assert tensors.from_array(np.array([1.5])).double_val == [1.5]
    ints = tensors.from_array(np.array([[1, 2]]))
    assert ints.dtype == types_pb2.DT_INT64
    assert [d.size for d in ints.tensor_shape.dim] == [1, 2]
    assert tensors.from_array(np.array(["a"])).string_val == [b"a"]
    assert tensors.from_array(np.array([True])).bool_val == [True]


def test_examples_with_context() -> None:
    context = example_pb2.Example()
    context.features.feature["a"].float_list.value.append(1.0)
    example = example_pb2.Example()
    example.features.feature["b"].int64_list.value.extend([2, 3])
    assert tensors.examples_to_dicts([example], context) == [{"a": [1.0], "b": [2.0, 3.0]}]
    bad = example_pb2.Example()
    bad.features.feature["c"].bytes_list.value.append(b"x")
    with pytest.raises(InvalidArgument, match="bytes_list"):
        tensors.examples_to_dicts([bad], None)


def test_signature_def_map() -> None:
    sig = Signature(
        "tensorflow/serving/predict",
        {"inputs": TensorSpec("DT_DOUBLE", (-1, 3))},
        {"predictions": TensorSpec("DT_STRING", (-1,))},
    )
    result = tensors.signature_def_map({"serving_default": sig})
    default = result.signature_def["serving_default"]
    assert default.method_name == "tensorflow/serving/predict"
    assert [d.size for d in default.inputs["inputs"].tensor_shape.dim] == [-1, 3]
    assert default.outputs["predictions"].dtype == types_pb2.DT_STRING
