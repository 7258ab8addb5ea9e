"""Run (and fine-tune) our own ONNX graphs in PyTorch.

The converted Keras ResNet50 uses a handful of ops; executing its node list directly keeps one source of
truth for the weights: fine-tuned values are written back into the same initializers, so the exported ONNX
is the trained network by construction, not a re-export of a look-alike.
"""
import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _same_upper(x, kernel, stride):
    """ONNX auto_pad=SAME_UPPER: output = ceil(in / stride), extra padding at the end (as Keras 'same')."""
    pads = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        total = max((-(-size // s) - 1) * s + k - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class OnnxNet(torch.nn.Module):
    def __init__(self, model: onnx.ModelProto, trainable=lambda name: False):
        super().__init__()
        self.nodes = list(model.graph.node)
        self.input_name = model.graph.input[0].name
        self.output_name = model.graph.output[0].name
        self.consts, self.param_names = {}, {}
        self.params = torch.nn.ParameterDict()
        for init in model.graph.initializer:
            arr = numpy_helper.to_array(init)
            if arr.dtype == np.float32:
                key = init.name.replace(".", "_").replace("/", "_")
                self.params[key] = torch.nn.Parameter(torch.from_numpy(arr.copy()), requires_grad=trainable(init.name))
                self.param_names[init.name] = key
            else:
                self.consts[init.name] = arr

    def value(self, env, name):
        if name in env:
            return env[name]
        if name in self.param_names:
            return self.params[self.param_names[name]]
        return self.consts[name]

    def partition(self):
        """Splits the graph for fine-tuning: nodes that depend on no trainable parameter (the frozen stages and
        pooled side branches) can run once per image; the rest run every step. Returns (frozen, live, boundary),
        boundary being the frozen tensors that live nodes read."""
        tainted = {n for n, k in self.param_names.items() if self.params[k].requires_grad}
        frozen, live = [], []
        for node in self.nodes:
            if any(i in tainted for i in node.input):
                live.append(node)
                tainted.update(node.output)
            else:
                frozen.append(node)
        produced = {o for n in frozen for o in n.output}
        boundary = sorted({i for n in live for i in n.input if i in produced})
        return frozen, live, boundary

    def run(self, env, nodes=None):
        """Executes `nodes` (default: the whole graph) on env (tensor name -> value) and returns env."""
        for node in self.nodes if nodes is None else nodes:
            a = _attrs(node)
            ins = [self.value(env, i) if i else None for i in node.input]
            op = node.op_type
            if op == "Conv":
                x, w = ins[0], ins[1]
                b = ins[2] if len(ins) > 2 else None
                stride = a.get("strides", [1, 1])
                if a.get("auto_pad", b"NOTSET") in (b"SAME_UPPER", "SAME_UPPER"):
                    x, pad = _same_upper(x, w.shape[2:], stride), 0
                else:
                    p = a.get("pads", [0, 0, 0, 0])
                    if p[0] == p[2] and p[1] == p[3]:
                        pad = (p[0], p[1])
                    else:
                        x, pad = F.pad(x, [p[1], p[3], p[0], p[2]]), 0
                y = F.conv2d(x, w, b, stride=stride, padding=pad)
            elif op == "Relu":
                y = F.relu(ins[0])
            elif op == "Add":
                y = ins[0] + ins[1]
            elif op == "MaxPool":
                p = a.get("pads", [0, 0, 0, 0])
                x = F.pad(ins[0], [p[1], p[3], p[0], p[2]], value=float("-inf")) if any(p) else ins[0]
                y = F.max_pool2d(x, a["kernel_shape"], a.get("strides", a["kernel_shape"]))
            elif op == "Pad":
                p = [int(v) for v in ins[1]]
                n = len(p) // 2
                torch_pads = []
                for d in reversed(range(n)):
                    torch_pads += [p[d], p[d + n]]
                y = F.pad(ins[0], torch_pads)
            elif op == "GlobalAveragePool":
                y = ins[0].mean(dim=(2, 3), keepdim=True)
            elif op == "Flatten":
                y = torch.flatten(ins[0], a.get("axis", 1))
            elif op == "Concat":
                y = torch.cat(ins, dim=a["axis"])
            elif op == "Gemm":
                w = ins[1].t() if a.get("transB", 0) else ins[1]
                y = ins[0] @ w + (ins[2] if len(ins) > 2 else 0)
            elif op == "BatchNormalization":
                y = F.batch_norm(ins[0], ins[3], ins[4], ins[1], ins[2], False, 0.0, a.get("epsilon", 1e-5))
            else:
                raise NotImplementedError(f"ONNX op {op} is not supported by onnx_torch")
            env[node.output[0]] = y
        return env

    def forward(self, x):
        return self.run({self.input_name: x})[self.output_name]

    def write_back(self, model: onnx.ModelProto):
        """Copies current parameter values into the model's initializers (in place)."""
        for init in model.graph.initializer:
            key = self.param_names.get(init.name)
            if key is not None:
                init.CopyFrom(numpy_helper.from_array(self.params[key].detach().cpu().numpy(), init.name))
