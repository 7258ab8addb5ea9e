"""Static int8 of the served ResNet50 in ONNX's QDQ form, which onnxruntime fuses into QLinearConv/QLinearAdd:

- activations uint8, asymmetric, one range per tensor (from training/src/quantize.ts, which runs `probe`'s
  model over training images through @garbage/inference's own decoding and takes the 0.001th/99.999th
  percentiles); a ReLU after a Conv or Add is folded into the range (zero point 0 clamps like ReLU does);
- weights int8 holding 7-bit values (--weight-bits), symmetric, one scale per output channel; biases int32 with scale = input scale x weight scale
  (a float bias keeps onnxruntime from fusing);
- the head (Gemm) and the pooled embedding stay float32, so the review's distances keep their meaning.

  quantize.py probe --model M.onnx --out probe.onnx --tensors tensors.json
  quantize.py quantize --model M.onnx --ranges ranges.json --out M-int8.onnx
"""

import argparse
import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def float32_model(path):
    """The model with float16-stored weights turned back into float32 initializers (Casts removed)."""
    m = onnx.load(path)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    keep = []
    for n in g.node:
        src = inits.get(n.input[0]) if n.op_type == "Cast" and n.input else None
        if src is not None and src.data_type == TensorProto.FLOAT16:
            g.initializer.append(numpy_helper.from_array(numpy_helper.to_array(src).astype(np.float32), n.output[0]))
            g.initializer.remove(src)
            continue
        keep.append(n)
    del g.node[:]
    g.node.extend(keep)
    return m


def activations(g):
    """Float tensors whose ranges the quantizer needs: Conv inputs, Conv/Add outputs, ReLU outputs."""
    names = []
    for n in g.node:
        if n.op_type == "Conv":
            names += [n.input[0], n.output[0]]
        elif n.op_type in ("Add", "Relu"):
            names.append(n.output[0])
    return list(dict.fromkeys(names))


def probe(a):
    m = float32_model(a.model)
    names = activations(m.graph)
    existing = {o.name for o in m.graph.output}
    for name in names:
        if name not in existing:
            m.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    onnx.save(m, a.out)
    with open(a.tensors, "w") as f:
        json.dump(names, f)


def _qparams(lo, hi):
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max(hi - lo, 1e-8) / 255.0
    return np.float32(scale), np.uint8(np.clip(round(-lo / scale), 0, 255))


def quantize(a):
    m = float32_model(a.model)
    g = m.graph
    ranges = json.load(open(a.ranges))
    inits = {i.name: i for i in g.initializer}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    new_inits, nodes, rename, qinfo = [], [], {}, {}

    def qdq(src, dst, lo, hi):
        """Q then DQ of src into dst; returns the activation scale."""
        scale, zp = _qparams(lo, hi)
        base = src.replace("/", "_").strip("_")
        new_inits.extend([numpy_helper.from_array(np.array(scale), f"{base}_scale"),
                          numpy_helper.from_array(np.array(zp), f"{base}_zp")])
        nodes.append(helper.make_node("QuantizeLinear", [src, f"{base}_scale", f"{base}_zp"], [f"{base}_q"]))
        nodes.append(helper.make_node("DequantizeLinear", [f"{base}_q", f"{base}_scale", f"{base}_zp"], [dst]))
        qinfo[dst] = float(scale)
        return float(scale)

    folded = set()
    for n in g.node:
        if n.op_type == "Relu":
            src = n.input[0]
            prod = next((p for p in g.node if src in p.output), None)
            if prod is not None and prod.op_type in ("Conv", "Add") and len(consumers[src]) == 1:
                folded.add(n.name or n.output[0])
    for n in g.node:
        ins = [rename.get(i, i) for i in n.input]
        if n.op_type == "Relu" and (n.name or n.output[0]) in folded:
            continue  # its Q/DQ was written after the producer
        if n.op_type == "Conv":
            x = ins[0]
            if x not in qinfo:  # an input that no quantized producer wrote (the stem, after MaxPool)
                lo, hi = ranges[n.input[0]]
                dq = f"{x}_dq"
                qdq(x, dq, lo, hi)
                rename[n.input[0]] = dq
                x = dq
            w = numpy_helper.to_array(inits[n.input[1]])
            qmax = 2 ** (a.weight_bits - 1) - 1
            ws = np.maximum(np.abs(w).reshape(w.shape[0], -1).max(1), 1e-12) / qmax
            wq = np.clip(np.round(w / ws[:, None, None, None]), -qmax, qmax).astype(np.int8)
            wn = n.input[1]
            new_inits += [numpy_helper.from_array(wq, f"{wn}_q"),
                          numpy_helper.from_array(ws.astype(np.float32), f"{wn}_scale"),
                          numpy_helper.from_array(np.zeros(len(ws), np.int8), f"{wn}_zp")]
            nodes.append(helper.make_node("DequantizeLinear", [f"{wn}_q", f"{wn}_scale", f"{wn}_zp"], [f"{wn}_dq"],
                                          axis=0))
            ins = [x, f"{wn}_dq"] + ins[2:]
            if len(n.input) > 2:
                b = numpy_helper.to_array(inits[n.input[2]])
                bs = (qinfo[x] * ws).astype(np.float32)
                bq = np.round(b / bs).astype(np.int32)
                bn = n.input[2]
                new_inits += [numpy_helper.from_array(bq, f"{bn}_q"), numpy_helper.from_array(bs, f"{bn}_scale"),
                              numpy_helper.from_array(np.zeros(len(bs), np.int32), f"{bn}_zp")]
                nodes.append(helper.make_node("DequantizeLinear", [f"{bn}_q", f"{bn}_scale", f"{bn}_zp"],
                                              [f"{bn}_dq"], axis=0))
                ins[2] = f"{bn}_dq"
        nodes.append(helper.make_node(n.op_type, ins, list(n.output), name=n.name, **{
            at.name: helper.get_attribute_value(at) for at in n.attribute}))
        if n.op_type in ("Conv", "Add"):
            out = n.output[0]
            relu = [c for c in consumers.get(out, []) if c.op_type == "Relu" and (c.name or c.output[0]) in folded]
            if relu:
                r = relu[0].output[0]
                qdq(out, r, 0.0, ranges[r][1])  # the ReLU's range: Q clamps below zero like ReLU
            else:
                lo, hi = ranges[out]
                qdq(out, f"{out}_dq", lo, hi)
                rename[out] = f"{out}_dq"
    used = {i for nd in nodes for i in nd.input}
    kept_inits = [i for i in g.initializer if i.name in used]
    del g.node[:]
    g.node.extend(nodes)
    del g.initializer[:]
    g.initializer.extend(kept_inits + new_inits)
    onnx.checker.check_model(m)
    onnx.save(m, a.out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["probe", "quantize"])
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tensors")
    p.add_argument("--ranges")
    # x86 CPUs without VNNI multiply uint8 x int8 pairs into saturating int16 sums (vpmaddubsw): 8-bit weights
    # overflow there and cost 4 points of `val` (measured on an AVX2-only EPYC); 7-bit weights cannot overflow.
    p.add_argument("--weight-bits", type=int, default=7, choices=[7, 8])
    a = p.parse_args()
    probe(a) if a.mode == "probe" else quantize(a)


if __name__ == "__main__":
    main()
