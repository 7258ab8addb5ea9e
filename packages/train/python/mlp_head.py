#!/usr/bin/env python3
"""Phase one, second branch: a one-hidden-layer ReLU network on the frozen, standardised backbone features.

The caller (phase1.ts) adds its logits to the linear L-BFGS head's, so the exported head is
linear(f) + mlp2(relu(mlp1(f))). The linear head is convex and stable; the branch adds the feature
interactions a linear model cannot express. Fixed settings and a fixed epoch count: nothing here is picked
per epoch, so `val` only decides (in the caller) whether the branch is kept at all.

usage: mlp_head.py --x-train F --y-train F --x-val F --y-val F --dim D --classes K --out W [--seed 42]
Reads float32 [n, D] and int32 [n] files; writes <out> (float32 W1 [H, D], b1 [H], W2 [K, H], b2 [K])
and <out>.json (settings, val accuracy in PyTorch, minutes).
"""
import argparse
import json
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("--x-train", "--y-train", "--x-val", "--y-val", "--out"):
        p.add_argument(name, required=True)
    p.add_argument("--dim", type=int, required=True)
    p.add_argument("--classes", type=int, required=True)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--input-dropout", type=float, default=0.2)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)

    t0 = time.time()
    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    x = torch.from_numpy(np.fromfile(a.x_train, dtype=np.float32).reshape(-1, a.dim))
    y = torch.from_numpy(np.fromfile(a.y_train, dtype=np.int32).astype(np.int64))
    xv = torch.from_numpy(np.fromfile(a.x_val, dtype=np.float32).reshape(-1, a.dim))
    yv = torch.from_numpy(np.fromfile(a.y_val, dtype=np.int32).astype(np.int64))
    if len(x) != len(y) or len(xv) != len(yv):
        raise SystemExit("error: feature and label files disagree in length")
    counts = torch.bincount(y, minlength=a.classes).clamp(min=1).float()
    class_weight = len(y) / (a.classes * counts)  # the same "balanced" weights as the linear head

    first = torch.nn.Linear(a.dim, a.hidden)
    second = torch.nn.Linear(a.hidden, a.classes)
    net = torch.nn.Sequential(
        torch.nn.Dropout(a.input_dropout), first, torch.nn.ReLU(), torch.nn.Dropout(a.dropout), second
    )
    opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    steps = a.epochs * ((len(y) + a.batch - 1) // a.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=steps)
    for epoch in range(a.epochs):
        net.train()
        order = torch.randperm(len(y))
        total = 0.0
        for i in range(0, len(y), a.batch):
            idx = order[i:i + a.batch]
            loss = F.cross_entropy(net(x[idx]), y[idx], weight=class_weight, label_smoothing=a.label_smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            total += loss.item() * len(idx)
        if epoch % 10 == 9 or epoch == a.epochs - 1:
            print(f"[mlp-head] epoch {epoch + 1}/{a.epochs}: train loss {total / len(y):.4f}", file=sys.stderr, flush=True)
    net.eval()
    with torch.no_grad():
        val_accuracy = (net(xv).argmax(1) == yv).float().mean().item()
    parts = [first.weight, first.bias, second.weight, second.bias]
    np.concatenate([t.detach().numpy().astype(np.float32).ravel() for t in parts]).tofile(a.out)
    settings = {k: v for k, v in vars(a).items() if k not in ("x_train", "y_train", "x_val", "y_val", "out")}
    report = {"settings": settings, "valAccuracy": val_accuracy, "minutes": (time.time() - t0) / 60}
    with open(a.out + ".json", "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main()
