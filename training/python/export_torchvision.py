#!/usr/bin/env python3
"""Turn a torchvision ResNet50 state dict with an N-class head (the original app's best_garbage_model.pth)
into a garbage-sort model: <out>.onnx with a dynamic batch dimension plus the <out>.json manifest.

usage: export_torchvision.py --state-dict best_garbage_model.pth --out models/original.onnx
                             [--classes cardboard,glass,metal,paper,plastic,trash] [--size 224]
The original recipe preprocessed with Resize((224, 224)), ToTensor() and ImageNet mean/std, so the manifest
says: stretch to 224x224, RGB, scale 1/255, mean [0.485, 0.456, 0.406], std [0.229, 0.224, 0.225].
"""
import argparse
import datetime
import hashlib
import json
import os
import sys

import torch
import torchvision

DEFAULT_CLASSES = "cardboard,glass,metal,paper,plastic,trash"


def unwrap(obj):
    """Accept a bare state dict, a training checkpoint dict, a whole pickled model, or DataParallel keys."""
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    for key in ("model_state_dict", "state_dict", "model"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj:
        raise SystemExit("error: the file does not hold a state dict")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}


def build_head(state, in_features):
    """fc is either one Linear or a Sequential of Linear/ReLU/Dropout (e.g. Dropout then Linear)."""
    if "fc.weight" in state:
        return torch.nn.Linear(in_features, state["fc.weight"].shape[0])
    indices = sorted({int(k.split(".")[1]) for k in state if k.startswith("fc.") and k.endswith(".weight")})
    if not indices:
        raise SystemExit("error: no fc.weight or fc.<i>.weight in the state dict: not a torchvision ResNet head")
    layers, width = [], in_features
    for pos in range(indices[-1] + 1):
        if pos in indices:
            out = state[f"fc.{pos}.weight"].shape[0]
            layers.append(torch.nn.Linear(width, out))
            width = out
        elif pos < indices[-1]:
            # A parameterless layer between Linears: ReLU is the only one that changes eval outputs.
            layers.append(torch.nn.ReLU() if pos - 1 in indices else torch.nn.Dropout())
    return torch.nn.Sequential(*layers)


def load_model(path):
    state = unwrap(torch.load(path, map_location="cpu"))
    model = torchvision.models.resnet50()
    model.fc = build_head(state, model.fc.in_features)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise SystemExit(f"error: state dict does not fit ResNet50: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval()


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export(model, out, classes, size, source):
    n = model(torch.zeros(1, 3, size, size)).shape[1]
    if n != len(classes):
        raise SystemExit(f"error: the head has {n} outputs but {len(classes)} classes were given")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    torch.onnx.export(
        model, torch.zeros(1, 3, size, size), out, input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=13, do_constant_folding=True,
    )
    manifest = {
        "name": os.path.splitext(os.path.basename(out))[0],
        "version": datetime.date.today().isoformat(),
        "file": os.path.basename(out),
        "sha256": sha256(out),
        "classes": classes,
        "input": {"name": "input", "layout": "NCHW", "width": size, "height": size, "resize": "stretch",
                  "channelOrder": "RGB", "scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
        "output": {"name": "logits", "kind": "logits"},
        "temperature": 1,
        "metrics": [],
        "training": {"recipe": "torchvision ResNet50 state dict exported by export_torchvision.py", "source": source},
    }
    manifest_path = os.path.splitext(out)[0] + ".json"
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=2)
    return manifest_path


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--state-dict", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--classes", default=DEFAULT_CLASSES)
    p.add_argument("--size", type=int, default=224)
    a = p.parse_args(argv)
    torch.set_grad_enabled(False)
    model = load_model(a.state_dict)
    manifest = export(model, a.out, a.classes.split(","), a.size, os.path.basename(a.state_dict))
    print(f"wrote {a.out} and {manifest}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
