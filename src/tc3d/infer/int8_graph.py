"""The numbers an int8 calibration holds, read from and written into an OpenVINO graph.

NNCF leaves an int8 model as a float graph with FakeQuantize nodes and, after bias correction,
changed biases. :func:`read_ranges` takes out what the calibration videos decided (each
activation quantiser's range and each corrected bias, with a digest of where they sit);
:func:`write_ranges` puts them back into a freshly quantised graph of the same model.
:mod:`tc3d.infer.quantize` uses the two to store and rebuild int8 models.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

from tc3d.errors import TC3DError


class CalibrationError(TC3DError, RuntimeError):
    """No usable int8 calibration; str(e) is one line."""


class CalibrationMismatch(CalibrationError):
    """A stored calibration whose quantisers do not match the converted model."""


def _activation_quantizers(model) -> list:
    """The FakeQuantize nodes on activations, in graph order (those on weights have a
    constant input: their ranges come from the weights)."""
    found = []
    for node in model.get_ordered_ops():
        if node.get_type_name() != "FakeQuantize":
            continue
        source = node.input_value(0).get_node()
        while source.get_type_name() == "Convert":
            source = source.input_value(0).get_node()
        if source.get_type_name() != "Constant":
            found.append(node)
    return found


def _bias_adds(model) -> list:
    """The Add nodes that give a convolution or the classifier its bias (a constant), in graph
    order: what bias correction changes."""
    found = []
    for node in model.get_ordered_ops():
        if node.get_type_name() != "Add":
            continue
        producer = node.input_value(0).get_node().get_type_name()
        if producer in ("Convolution", "MatMul") and _is_constant(node.input_value(1)):
            found.append(node)
    return found


def _is_constant(value) -> bool:
    return value.get_node().get_type_name() == "Constant"


def _layout(nodes: list) -> str:
    """A digest of where the quantisers and biases sit (their names without counters, levels
    and shapes): two models with the same layout take the same stored numbers."""
    parts = []
    for node in nodes:
        shape = node.input_value(1).get_node().get_data().shape
        levels = node.get_attributes().get("levels", "-")
        parts.append(f"{_structural(node.get_friendly_name())}:{levels}:{list(shape)}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _short(value: np.ndarray) -> float:
    """A float32 as the shortest decimal that reads back as the same float32."""
    return float(str(np.float32(value)))


def read_ranges(model, original) -> dict:
    """The activation quantisers' layout and ranges: ``[low, high]`` for each (a scalar range
    that quantises and dequantises alike, as NNCF's per-tensor activations do), else
    ``[low, high, out_low, out_high]``; and the biases bias correction changed from those of
    the ``original`` float model, by their place among the model's biases."""
    nodes = _activation_quantizers(model)
    values = []
    for node in nodes:
        four = [node.input_value(i).get_node().get_data() for i in range(1, 5)]
        if any(v.size != 1 for v in four):
            raise CalibrationError("int8: per-channel activation ranges are not supported")
        low, high, out_low, out_high = (_short(v.reshape(())) for v in four)
        same = (low, high) == (out_low, out_high)
        values.append([low, high] if same else [low, high, out_low, out_high])
    adds = _bias_adds(model)
    before = [_bias(n) for n in _bias_adds(original)]
    if len(before) != len(adds):
        raise CalibrationError("int8: NNCF changed the graph's biases beyond recognition")
    biases = {
        str(i): [_short(b) for b in _bias(n).ravel()]
        for i, (n, old) in enumerate(zip(adds, before, strict=True))
        if not np.array_equal(_bias(n), old)
    }
    return {"layout": _layout(nodes + adds), "values": values, "biases": biases}


def _bias(node) -> np.ndarray:
    return node.input_value(1).get_node().get_data()


def _structural(name: str) -> str:
    """A quantiser's name without the counters OpenVINO numbers its nodes with (they differ
    from one conversion to the next: ``Multiply_5050`` and ``Multiply_18346`` are one node)."""
    return re.sub(r"_\d+(?=/|$)", "", name)


def write_ranges(model, ranges: dict) -> None:
    """Put the stored activation ranges into a freshly quantised model."""
    from openvino import op

    nodes, adds = _activation_quantizers(model), _bias_adds(model)
    if _layout(nodes + adds) != ranges["layout"] or len(nodes) != len(ranges["values"]):
        raise CalibrationMismatch(
            f"the stored int8 calibration ({len(ranges['values'])} activation ranges) does not "
            f"fit the {len(nodes)} quantisers of this model (made by another OpenVINO or NNCF?)"
        )
    for node, values in zip(nodes, ranges["values"], strict=True):
        four = values if len(values) == 4 else [*values, *values]
        shape = node.input_value(1).get_node().get_data().shape
        for i, value in enumerate(four, start=1):
            constant = op.Constant(np.full(shape, value, dtype=np.float32))
            node.input(i).replace_source_output(constant.output(0))
    for index, values in ranges["biases"].items():
        node = adds[int(index)]
        bias = np.asarray(values, dtype=np.float32).reshape(_bias(node).shape)
        node.input(1).replace_source_output(op.Constant(bias).output(0))
    model.validate_nodes_and_infer_types()
