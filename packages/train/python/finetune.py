#!/usr/bin/env python3
"""Phase two: fine-tune the last ResNet stage (and the head) of a phase-one garbage-sort model.

Stages 1-4 stay frozen, so their outputs are computed once per augmented view and cached (fp16); each epoch
then trains stage 5 + head on one randomly chosen view per image. Selection is on `val` only: epoch 0 is
the phase-one model itself, so fine-tuning can only be kept if it measurably beats phase one.

usage: finetune.py --model phase1.onnx --out finetuned.onnx --train DIR --val DIR [--views 6] [--epochs 12]
                   [--lr 1e-4] [--head-lr 1e-3] [--seed 42] [--device auto|cpu|cuda]
Writes <out> (same graph, new stage-5 and head weights) and <out>.torch-val.json (PyTorch's validation
probabilities, for the ONNX export check done by the caller).
"""
import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_torch import OnnxNet  # noqa: E402

TRAINABLE = ("res5", "head")  # stage 5 and the classifier; stages 1-4 stay frozen


def log(msg):
    print(f"[finetune] {msg}", file=sys.stderr, flush=True)


def list_folder(root, classes):
    items = []
    for c, name in enumerate(classes):
        d = os.path.join(root, name)
        for f in sorted(os.listdir(d)):
            if f.lower().endswith((".jpg", ".jpeg", ".png")):
                items.append((os.path.join(d, f), c))
    return items


def to_tensor(spec):
    mean = torch.tensor(spec["mean"], dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(spec["std"], dtype=torch.float32).view(3, 1, 1)
    bgr = spec["channelOrder"] == "BGR"

    def convert(img):
        x = torch.from_numpy(np.asarray(img, dtype=np.float32).copy()).permute(2, 0, 1)
        if bgr:
            x = x.flip(0)
        return (x * spec["scale"] - mean) / std

    return convert


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--val", help="validation ImageFolder (decoded here with PIL)")
    p.add_argument("--val-tensors", help="float32 [n,3,h,w] written by the TypeScript serving decoder")
    p.add_argument("--val-list", help="JSON [{file,label}] matching --val-tensors")
    p.add_argument("--views", type=int, default=6)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--head-lr", type=float, default=0.0, help="0 keeps the phase-one head")
    p.add_argument("--weight-decay", type=float, default=1e-2, help="L2 pull towards the pretrained weights")
    p.add_argument("--label-smoothing", type=float, default=0.05)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default="auto")
    p.add_argument("--optimizer", choices=["sgd", "adamw"], default="sgd")
    p.add_argument("--balanced", action="store_true", help="weight the loss by inverse class frequency")
    p.add_argument("--warmup", type=float, default=1.0, help="epochs of linear learning-rate warm-up")
    p.add_argument("--view-cache", help="directory to keep the cached stage-4 views in between runs")
    a = p.parse_args(argv)

    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    torch.set_num_threads(os.cpu_count() or 1)
    device = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available() else ("cpu" if a.device == "auto" else a.device))
    manifest = json.load(open(os.path.splitext(a.model)[0] + ".json"))
    classes, spec = manifest["classes"], manifest["input"]
    size = (spec["height"], spec["width"])
    model_proto = onnx.load(a.model)
    net = OnnxNet(model_proto, trainable=lambda n: n.startswith(TRAINABLE)).to(device)
    # channels_last lets oneDNN use its fast convolution kernels: about 1.7x on this 2-core CPU.
    cl = torch.channels_last
    for q in net.params.values():
        if q.dim() == 4:
            q.data = q.data.contiguous(memory_format=cl)
    frozen, live, boundary = net.partition()
    log(f"{len(frozen)} frozen nodes, {len(live)} trainable; cached per view: {', '.join(boundary)}")
    convert = to_tensor(spec)
    # Serving stretches to WxH with an antialiased bilinear filter: PIL's BILINEAR resize is the same transform.
    clean = transforms.Compose([transforms.Resize(size, interpolation=transforms.InterpolationMode.BILINEAR), convert])
    augment = transforms.Compose([
        transforms.RandomRotation(15, fill=(255, 255, 255)),
        transforms.RandomResizedCrop(size, scale=(0.35, 1.0), ratio=(3 / 4, 4 / 3)),
        transforms.RandomHorizontalFlip(),
        transforms.ColorJitter(0.25, 0.25, 0.2, 0.02),
        convert,
    ])
    train_items = list_folder(a.train, classes)
    if a.val_tensors:
        # Select on exactly what production feeds the model, and let the caller compare the exported ONNX
        # with PyTorch on identical inputs.
        val_items = [(v["file"], v["label"]) for v in json.load(open(a.val_list))]
        val_input = torch.from_numpy(np.fromfile(a.val_tensors, dtype=np.float32).reshape(len(val_items), 3, *size))
    elif a.val:
        val_items, val_input = list_folder(a.val, classes), None
    else:
        raise SystemExit("error: give --val or --val-tensors/--val-list")
    y_train = torch.tensor([c for _, c in train_items])
    y_val = torch.tensor([c for _, c in val_items])

    @torch.no_grad()
    def stage4(items, tf):
        out = []
        for i in range(0, len(items), 16):
            x = torch.stack([tf(Image.open(f).convert("RGB")) for f, _ in items[i:i + 16]]).to(device, memory_format=cl)
            env = net.run({net.input_name: x}, frozen)
            out.append({b: env[b].half().cpu() for b in boundary})
        return {b: torch.cat([o[b] for o in out]) for b in boundary}

    t0 = time.time()
    cache_file = None
    if a.view_cache:
        # Stages 1-4 are the frozen Keras weights whatever the head, so cached views serve every experiment.
        tag = f"{os.path.basename(a.train.rstrip('/'))}-{len(train_items)}-{size[0]}x{size[1]}-v{a.views}-s{a.seed}-{'-'.join(boundary)}"
        cache_file = os.path.join(a.view_cache, f"stage4-{tag}.pt")
    if val_input is None:
        val_cache = stage4(val_items, clean)
    else:
        with torch.no_grad():
            # fp32, unlike the training views: these logits are compared with the exported ONNX.
            parts = []
            for i in range(0, len(val_input), 16):
                # Keep only the boundary tensors: the whole env holds every activation of the frozen stages.
                env = net.run({net.input_name: val_input[i:i + 16].to(device, memory_format=cl)}, frozen)
                parts.append({b: env[b].cpu() for b in boundary})
            val_cache = {b: torch.cat([e[b] for e in parts]) for b in boundary}
    if cache_file and os.path.exists(cache_file):
        views = torch.load(cache_file)
        log(f"loaded {len(views)} cached views from {cache_file}")
    else:
        views = [stage4(train_items, clean)]
        for v in range(1, a.views):
            views.append(stage4(train_items, augment))
            log(f"cached view {v + 1}/{a.views} ({time.time() - t0:.0f} s)")
        if cache_file:
            os.makedirs(a.view_cache, exist_ok=True)
            torch.save(views, cache_file + ".tmp")
            os.replace(cache_file + ".tmp", cache_file)
    cache_minutes = (time.time() - t0) / 60

    def top(feats):
        env = {}
        for b, t in feats.items():
            t = t.to(device).float()
            env[b] = t.contiguous(memory_format=cl) if t.dim() == 4 else t
        return net.run(env, live)[net.output_name]

    def rows(cache, idx):
        return {b: t[idx] for b, t in cache.items()}

    @torch.no_grad()
    def evaluate():
        net.eval()
        n = len(val_items)
        logits = torch.cat([top(rows(val_cache, slice(i, i + 64))) for i in range(0, n, 64)]).cpu()
        pred = logits.argmax(1)
        acc = (pred == y_val).float().mean().item()
        f1s = []
        for c in range(len(classes)):
            tp = ((pred == c) & (y_val == c)).sum().item()
            prec = tp / max((pred == c).sum().item(), 1)
            rec = tp / max((y_val == c).sum().item(), 1)
            f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
        return acc, sum(f1s) / len(f1s), logits

    trainable = [(n, q) for n, q in net.params.items() if q.requires_grad]
    anchors = {n: q.detach().clone() for n, q in trainable}
    groups = [
        {"params": [q for n, q in trainable if not n.startswith("head")], "lr": a.lr},
        {"params": [q for n, q in trainable if n.startswith("head")], "lr": a.head_lr},
    ]
    # AdamW's per-parameter scaling suits the folded head, whose weights carry 1/std of each feature.
    opt = torch.optim.AdamW(groups, weight_decay=0) if a.optimizer == "adamw" else torch.optim.SGD(groups, momentum=0.9, nesterov=True)
    per_epoch = math.ceil(len(train_items) / a.batch)
    steps, warm = a.epochs * per_epoch, max(1, int(a.warmup * per_epoch))

    def lr_at(step):
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(step - warm, steps - warm) / max(1, steps - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    counts = torch.bincount(y_train, minlength=len(classes)).float()
    class_weight = (len(y_train) / (len(classes) * counts)).to(device) if a.balanced else None

    acc, f1, logits = evaluate()
    best = {"epoch": 0, "acc": acc, "f1": f1, "state": {n: q.detach().clone() for n, q in trainable}, "logits": logits}
    history = [{"epoch": 0, "valAccuracy": acc, "valMacroF1": f1, "trainLoss": None}]
    log(f"epoch 0 (phase one): val acc {acc:.4f} macro-F1 {f1:.4f}")
    stale = 0
    for epoch in range(1, a.epochs + 1):
        net.train()
        order = torch.randperm(len(train_items))
        view_of = torch.randint(0, a.views, (len(train_items),))
        total = 0.0
        for i in range(0, len(order), a.batch):
            idx = order[i:i + a.batch]
            x = {b: torch.stack([views[int(view_of[j])][b][j] for j in idx]) for b in boundary}
            loss = F.cross_entropy(top(x), y_train[idx].to(device), weight=class_weight, label_smoothing=a.label_smoothing)
            # L2-SP: pull towards the pretrained/phase-one weights rather than towards zero.
            reg = sum(((q - anchors[n]) ** 2).sum() for n, q in trainable)
            opt.zero_grad()
            (loss + 0.5 * a.weight_decay * reg).backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        acc, f1, logits = evaluate()
        history.append({"epoch": epoch, "valAccuracy": acc, "valMacroF1": f1, "trainLoss": total / len(order)})
        log(f"epoch {epoch}: train loss {total / len(order):.4f} val acc {acc:.4f} macro-F1 {f1:.4f} ({time.time() - t0:.0f} s)")
        if acc > best["acc"] + 1e-9 or (abs(acc - best["acc"]) < 1e-9 and f1 > best["f1"] + 1e-9):
            best = {"epoch": epoch, "acc": acc, "f1": f1, "state": {n: q.detach().clone() for n, q in trainable}, "logits": logits}
            stale = 0
        else:
            stale += 1
            if stale >= a.patience:
                log(f"early stop: no val improvement in {a.patience} epochs")
                break

    with torch.no_grad():
        for n, q in trainable:
            q.copy_(best["state"][n])
    net.write_back(model_proto)
    onnx.save(model_proto, a.out)
    report = {
        "bestEpoch": best["epoch"], "valAccuracy": best["acc"], "valMacroF1": best["f1"], "history": history,
        "cacheMinutes": cache_minutes, "minutes": (time.time() - t0) / 60, "device": str(device),
        "settings": {k: v for k, v in vars(a).items() if k not in ("model", "out", "train", "val")},
        "files": [f for f, _ in val_items],
        "probabilities": torch.softmax(best["logits"], 1).tolist(),
    }
    json.dump(report, open(a.out + ".torch-val.json", "w"))
    log(f"best epoch {best['epoch']}: val acc {best['acc']:.4f}; wrote {a.out}")


if __name__ == "__main__":
    main(sys.argv[1:])
