"""Adapts a served model to one site's photos (npm run adapt; training/src/adapt.ts drives it).

Only the last stage (Keras stage 5) and the head train. Everything before stays exactly the served model's,
so its output on each view is computed once and cached (in bfloat16 where the CPU has it), and training
runs over the cache: minutes on two CPU cores. Each batch mixes the site's views with replayed views of
the base training photos (TrashNet), and an L2-SP penalty pulls the trained weights towards the served
ones, so the model keeps what it knew of every class, including classes the site has no photos of.

The same recipe trained on k-1 folds of the site's photos (split by photo, stratified by class) predicts the
held-out fold: those out-of-fold predictions give the temperature, the review threshold and the reported
accuracy, so none of them is measured on photos the model trained on.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from adapt_views import MEAN_BGR, load_photo, plain_view, site_view, trashnet_view  # noqa: E402
from data import image_folder as folder  # noqa: E402
from folded import load_served  # noqa: E402
from train import bf16_ok  # noqa: E402


# "cuda" when PyTorch sees a GPU (set in main); the trunk's cache and the training then live there.
DEVICE = "cpu"


def autocast(amp):
    return torch.autocast(DEVICE.split(":")[0], dtype=torch.bfloat16, enabled=amp)


def trunk(model, x):
    x = F.pad(x, (3, 3, 3, 3))
    x = F.relu(model.conv1(x))
    x = F.max_pool2d(F.pad(x, (1, 1, 1, 1)), 3, stride=2)
    for stage in model.stages[:3]:
        x = stage(x)
    return x


def head(model, f, dropout=0.0):
    emb = model.stages[3](f).mean(dim=(2, 3))
    return model.fc(F.dropout(emb, dropout, model.training)), emb


def to_tensor(img):
    a = np.asarray(img, np.float32)[:, :, ::-1] - MEAN_BGR
    return np.ascontiguousarray(a.transpose(2, 0, 1))


def cache_features(model, images, amp, batch=32):
    """Frozen-trunk outputs of a list of PIL views."""
    out = []
    with torch.no_grad(), autocast(amp):
        for i in range(0, len(images), batch):
            x = torch.from_numpy(np.stack([to_tensor(v) for v in images[i:i + batch]])).to(DEVICE)
            out.append(trunk(model, x).to(torch.bfloat16 if amp else torch.float32))
    return torch.cat(out)


def train_head(model, base_state, site, replay, a, steps, seed, amp):
    """site/replay: (features [N,...], labels [N], owner [N] photo index). Returns the trained stage 5 + fc."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model.load_state_dict(base_state)
    params = list(model.stages[3].parameters()) + list(model.fc.parameters())
    ref = [p.detach().clone() for p in params]
    groups = [{"params": list(model.stages[3].parameters()), "lr": a.lr},
              {"params": list(model.fc.parameters()), "lr": a.lr * a.head_lr_mult}]
    opt = torch.optim.SGD(groups, momentum=0.9, nesterov=True)
    base_lrs = [g["lr"] for g in opt.param_groups]
    sf, sy, _ = site
    rf, ry, _ = replay
    counts = np.bincount(sy.numpy(), minlength=6)
    w = np.array([1 / math.sqrt(counts[y]) for y in sy.numpy()])
    w /= w.sum()
    warm = min(20, steps // 10)
    model.train()
    for step in range(steps):
        lr_f = (step + 1) / warm if step < warm else 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))
        for g, lr in zip(opt.param_groups, base_lrs):
            g["lr"] = lr * lr_f
        si = torch.from_numpy(rng.choice(len(sy), a.site_batch, p=w))
        ri = torch.from_numpy(rng.integers(0, len(ry), a.replay_batch))
        x = torch.cat([sf[si.to(sf.device)], rf[ri.to(rf.device)]]).float()
        y = torch.cat([sy[si], ry[ri]]).to(x.device)
        with autocast(amp):
            logits, _ = head(model, x, a.dropout)
        ce = F.cross_entropy(logits.float(), y, label_smoothing=0.1, reduction="none")
        loss = ce[: a.site_batch].mean() + a.replay_weight * ce[a.site_batch:].mean()
        loss = loss + a.l2sp * sum(((p - r) ** 2).sum() for p, r in zip(params, ref))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
    model.eval()
    return {k: v.clone() for k, v in model.state_dict().items()}


def predict(model, feats, amp, batch=64):
    logits, embs = [], []
    with torch.no_grad(), autocast(amp):
        for i in range(0, len(feats), batch):
            lo, em = head(model, feats[i:i + batch].float())
            logits.append(lo.float().cpu())
            embs.append(em.float().cpu())
    return torch.cat(logits).numpy(), torch.cat(embs).numpy()


def folds_of(labels, k, seed):
    """Fold number per photo, stratified by class."""
    rng = np.random.default_rng(seed + 1000)
    fold = np.zeros(len(labels), int)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        fold[idx] = (np.arange(len(idx)) + rng.integers(k)) % k
    return fold


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True, help="served float ONNX model to start from")
    p.add_argument("--classes", required=True, help="comma-separated, the base manifest's order")
    p.add_argument("--data", required=True, help="the site's photos, <root>/<class>/<image> (prepared JPEGs)")
    p.add_argument("--replay", required=True, help="the base training photos, <root>/<class>/<image>")
    p.add_argument("--out", required=True, help="work directory")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--epochs", type=float, default=4, help="passes over the site's views")
    p.add_argument("--min-steps", type=int, default=150)
    p.add_argument("--max-steps", type=int, default=600)
    p.add_argument("--views", type=int, default=12, help="views per site photo (the first is the plain one)")
    p.add_argument("--replay-images", type=int, default=720)
    p.add_argument("--site-batch", type=int, default=16)
    p.add_argument("--replay-batch", type=int, default=16)
    p.add_argument("--replay-weight", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=0.004)
    p.add_argument("--head-lr-mult", type=float, default=5.0)
    p.add_argument("--l2sp", type=float, default=0.01)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--cv-folds", type=int, default=3)
    p.add_argument("--cv-step-share", type=float, default=0.35,
                   help="each fold model trains this share of the steps: the folds together cost about one final run")
    p.add_argument("--steps", type=int, default=0, help="fixed number of steps (tests); 0: from --epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()

    t0 = time.time()
    log = lambda s: print(f"[adapt.py {time.time() - t0:5.0f} s] {s}", file=sys.stderr, flush=True)  # noqa: E731
    torch.set_num_threads(a.threads)
    global DEVICE
    DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
    amp = bf16_ok(DEVICE)
    classes = a.classes.split(",")
    rng = np.random.default_rng(a.seed)
    model = load_served(a.base, len(classes)).to(DEVICE)
    base_state = {k: v.clone() for k, v in model.state_dict().items()}

    site_files = folder(a.data, classes)
    if not site_files:
        raise SystemExit(f"no images under {a.data}/<class>/")
    site_photos = [load_photo(f) for f, _ in site_files]
    site_labels = np.array([y for _, y in site_files])
    views, vy, vo = [], [], []
    for i, (photo, y) in enumerate(zip(site_photos, site_labels)):
        views.append(plain_view(photo, a.size))
        views += [site_view(photo, rng, a.size) for _ in range(a.views - 1)]
        vy += [y] * a.views
        vo += [i] * a.views
    replay_files = folder(a.replay, classes)
    per_class = max(1, a.replay_images // len(classes))
    chosen = []
    for c in range(len(classes)):
        idx = [i for i, (_, y) in enumerate(replay_files) if y == c]
        chosen += list(rng.permutation(idx)[:per_class])
    replay_views = [trashnet_view(load_photo(replay_files[i][0]), rng, a.size) for i in chosen]
    ry = torch.tensor([replay_files[i][1] for i in chosen])
    log(f"{len(site_files)} site photos ({np.bincount(site_labels, minlength=len(classes)).tolist()}), "
        f"{len(views)} site views, {len(replay_views)} replay views; device {DEVICE}, bf16 {amp}")

    sf = cache_features(model, views, amp)
    rf = cache_features(model, replay_views, amp)
    log(f"cached the frozen trunk's output ({(sf.numel() + rf.numel()) * sf.element_size() / 2**20:.0f} MiB)")
    site = (sf, torch.tensor(vy), torch.tensor(vo))
    replay = (rf, ry, None)
    plain_idx = torch.arange(0, len(views), a.views)
    # The model still holds the served weights: what the site gets today, on the same cached features.
    base_logits, _ = predict(model, sf[plain_idx.to(sf.device)], amp)
    steps = a.steps or int(min(a.max_steps, max(a.min_steps, a.epochs * len(views) / a.site_batch)))

    oof_logits = np.zeros((len(site_files), len(classes)), np.float32)
    fold = folds_of(site_labels, a.cv_folds, a.seed) if a.cv_folds >= 2 else None
    if fold is not None:
        for k in range(a.cv_folds):
            keep = torch.from_numpy(np.isin(np.array(vo), np.flatnonzero(fold != k)))
            state = train_head(model, base_state, (sf[keep.to(sf.device)], site[1][keep], None), replay, a,
                               int(steps * a.cv_step_share), a.seed + 1 + k, amp)
            model.load_state_dict(state)
            held = np.flatnonzero(fold == k)
            oof_logits[held] = predict(model, sf[plain_idx[held].to(sf.device)], amp)[0]
            log(f"fold {k + 1}/{a.cv_folds}: {len(held)} held-out photos, "
                f"{(oof_logits[held].argmax(1) == site_labels[held]).mean():.3f} right")

    state = train_head(model, base_state, site, replay, a, steps, a.seed, amp)
    model.load_state_dict(state)
    log(f"trained {steps} steps on every site photo")
    _, site_emb = predict(model, sf[plain_idx.to(sf.device)], amp)
    replay_logits, replay_emb = predict(model, rf, amp)

    os.makedirs(a.out, exist_ok=True)
    torch.save({k: v.cpu() for k, v in state.items()}, os.path.join(a.out, "model.pt"))
    np.savez(os.path.join(a.out, "adapt.npz"), oof_logits=oof_logits, base_logits=base_logits,
             site_labels=site_labels, site_emb=site_emb, replay_emb=replay_emb,
             replay_labels=ry.numpy(), replay_logits=replay_logits,
             fold=fold if fold is not None else np.zeros(0))
    summary = {"seed": a.seed, "steps": steps, "cvSteps": int(steps * a.cv_step_share) if fold is not None else 0,
               "cvFolds": a.cv_folds if fold is not None else 0, "bf16": amp, "device": DEVICE, "views": a.views,
               "replayImages": len(chosen), "sitePhotos": len(site_files),
               "files": [os.path.relpath(f, a.data) for f, _ in site_files],
               "settings": {k: getattr(a, k) for k in ("lr", "head_lr_mult", "l2sp", "dropout", "epochs",
                                                         "site_batch", "replay_batch", "replay_weight")},
               "trainingSeconds": round(time.time() - t0, 1)}
    with open(os.path.join(a.out, "adapt.json"), "w") as f:
        json.dump(summary, f, indent=2)
    log("done")


if __name__ == "__main__":
    Image.MAX_IMAGE_PIXELS = 80_000_000
    main()
