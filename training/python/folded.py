"""A served garbage-sort ONNX model (BatchNorm folded into the convolutions at export) loaded back into
PyTorch, so a site can fine-tune from exactly what it is served, not from a checkpoint it may not have.

The network is training/python/keras_resnet.py's with every BatchNorm replaced by the identity: the export
folded each BatchNorm's affine map into the conv before it, which is what the conv biases now hold. Conv
weights are matched to the graph's Conv nodes in the order PyTorch calls them, checked shape by shape.
"""

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from keras_resnet import KerasResNet50


def folded_resnet50(classes=6):
    model = KerasResNet50(classes)
    model.bn_conv1 = nn.Identity()
    for stage in model.stages:
        for block in stage:
            for attr in ("bn_a", "bn_b", "bn_c", "bn_proj"):
                if getattr(block, attr) is not None:
                    setattr(block, attr, nn.Identity())
    return model


def _initializers(graph):
    """name -> float32 array, following the Cast nodes that float16-stored weights sit behind."""
    arrays = {i.name: numpy_helper.to_array(i).astype(np.float32) for i in graph.initializer}
    for n in graph.node:
        if n.op_type == "Cast" and n.input[0] in arrays:
            arrays[n.output[0]] = arrays[n.input[0]]
    return arrays


def _conv_call_order(model, size=64):
    order = []
    hooks = [m.register_forward_hook(lambda mod, _i, _o: order.append(mod))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    return order


def load_served(path, classes=6):
    """The model of a served ONNX file (float weights; an int8 QDQ model is not a training start)."""
    graph = onnx.load(path).graph
    arrays = _initializers(graph)
    model = folded_resnet50(classes)
    model.eval()
    convs = [n for n in graph.node if n.op_type == "Conv"]
    order = _conv_call_order(model)
    if len(convs) != len(order):
        raise ValueError(f"{path}: {len(convs)} Conv nodes, the network has {len(order)} convolutions")
    for node, conv in zip(convs, order):
        w, b = arrays.get(node.input[1]), arrays.get(node.input[2]) if len(node.input) > 2 else None
        if w is None or b is None or tuple(w.shape) != tuple(conv.weight.shape):
            raise ValueError(f"{path}: Conv {node.name} does not match {tuple(conv.weight.shape)}")
        conv.weight.data.copy_(torch.from_numpy(w))
        conv.bias.data.copy_(torch.from_numpy(b))
    gemm = [n for n in graph.node if n.op_type in ("Gemm", "MatMul")]
    if len(gemm) != 1:
        raise ValueError(f"{path}: expected one fc layer, found {len(gemm)}")
    fc = gemm[0]
    w = arrays[fc.input[1]]
    transposed = any(a.name == "transB" and a.i == 1 for a in fc.attribute) or fc.op_type == "MatMul"
    w = w if fc.op_type == "Gemm" and transposed else w.T
    if w.shape != tuple(model.fc.weight.shape):
        raise ValueError(f"{path}: fc weight {w.shape}, expected {tuple(model.fc.weight.shape)}")
    model.fc.weight.data.copy_(torch.from_numpy(np.ascontiguousarray(w)))
    bias = fc.input[2] if len(fc.input) > 2 else None
    if bias is None:  # MatMul + Add
        add = next(n for n in graph.node if n.op_type == "Add" and fc.output[0] in n.input)
        bias = next(i for i in add.input if i in arrays)
    model.fc.bias.data.copy_(torch.from_numpy(arrays[bias]))
    return model
