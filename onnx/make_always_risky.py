#!/usr/bin/env python3
"""Writes testdata/always_risky.onnx: a valid contract-v1 model that scores every pool
p = sigmoid(2) = 0.881 (AVOID). The registry tests graduate it next to the shipped model to
prove that a graduation changes every actor's decisions. Needs only `pip install onnx`."""

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))

inits = [
    numpy_helper.from_array(np.zeros((22, 1), dtype=np.float32), "weights"),
    numpy_helper.from_array(np.array([2.0], dtype=np.float32), "bias"),
    numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat_shape"),
]
nodes = [
    helper.make_node("MatMul", ["features", "weights"], ["logit_raw"]),
    helper.make_node("Add", ["logit_raw", "bias"], ["logit"]),
    helper.make_node("Sigmoid", ["logit"], ["prob_col"]),
    helper.make_node("Reshape", ["prob_col", "flat_shape"], ["interruption_probability"]),
]
graph = helper.make_graph(
    nodes,
    "always_risky",
    [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 22])],
    [helper.make_tensor_value_info("interruption_probability", TensorProto.FLOAT, ["N"])],
    initializer=inits,
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="spot-optimizer onnx/make_always_risky.py")
model.ir_version = 7
onnx.checker.check_model(model)
onnx.save(model, os.path.join(HERE, "testdata", "always_risky.onnx"))
print("wrote testdata/always_risky.onnx")
