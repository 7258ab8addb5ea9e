"""Exports a fine-tuned checkpoint to ONNX: BatchNorm folded into the convolutions (eval-mode export), two
outputs (`logits`, and the pooled `embedding` that the review's novelty distance reads), weights stored as
float16 with a Cast to float32 after each, which ONNX Runtime folds away when it loads the model: half the
file, the same float32 arithmetic.
"""

import argparse
import os
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
from keras_resnet import KerasResNet50  # noqa: E402


def export(state_dict_path, out, size, classes=6):
    model = KerasResNet50(classes)
    model.load_state_dict(torch.load(state_dict_path, map_location="cpu"))
    model.eval()
    x = torch.zeros(1, 3, size, size)
    torch.onnx.export(model, x, out, input_names=["input"], output_names=["logits", "embedding"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}, "embedding": {0: "batch"}},
                      opset_version=13, do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL)
    graph = onnx.load(out)
    ops = {n.op_type for n in graph.graph.node}
    if "BatchNormalization" in ops:
        raise RuntimeError("export left BatchNormalization in the graph")
    return model


def store_half(path):
    """float32 initializers above 1k values become float16 + Cast; small ones (biases) stay float32."""
    m = onnx.load(path)
    g = m.graph
    casts = []
    for init in g.initializer:
        if init.data_type != TensorProto.FLOAT:
            continue
        arr = numpy_helper.to_array(init)
        if arr.size < 1024:
            continue
        half_name = init.name + "_fp16"
        half = numpy_helper.from_array(arr.astype(np.float16), half_name)
        init.CopyFrom(half)
        casts.append(helper.make_node("Cast", [half_name], [half_name[:-5]], to=TensorProto.FLOAT,
                                      name="cast_" + half_name))
    for c in reversed(casts):
        g.node.insert(0, c)
    onnx.checker.check_model(m)
    onnx.save(m, path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--float32-out", help="also keep a float32-stored copy here (to check the float16 one)")
    p.add_argument("--check-out", help="write a float32 input batch and PyTorch's outputs for the export check")
    a = p.parse_args()
    model = export(a.checkpoint, a.out, a.size)
    if a.float32_out:
        import shutil
        shutil.copyfile(a.out, a.float32_out)
    store_half(a.out)
    if a.check_out:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(4, 3, a.size, a.size, generator=g) * 60
        with torch.no_grad():
            logits, emb = model(x)
        np.concatenate([x.numpy().ravel(), logits.numpy().ravel(), emb.numpy().ravel()]).astype("<f4").tofile(a.check_out)
    print(f"wrote {a.out} ({os.path.getsize(a.out) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
