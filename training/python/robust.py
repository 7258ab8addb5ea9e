"""Writes the image sets the recipe measures and calibrates on, as <root>/<set>/<class>/<image>.jpg, so that
`garbage eval` (the served path) reads them like any ImageFolder:

- val-heldout-bg: every TrashNet val item composited twice onto backgrounds from packages training never
  uses (HELDOUT_PACKAGES), with a fixed seed.
- muell-holdout: the 30 % of Müll-Roboter held out from training, as photographed (items on black).
- muell-holdout-bg: the same held-out items composited onto the held-out backgrounds.
- train-composites: one composite of every training item on the training backgrounds (reference embeddings
  for the novelty distance, never for scoring).
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from backgrounds import HELDOUT_PACKAGES, TRAIN_PACKAGES, ensure_packages, load_backgrounds  # noqa: E402
from composite import composite_view  # noqa: E402
from data import CLASSES, _open, image_folder, load_items, muell_heldout  # noqa: E402
from masks import black_item, board_item  # noqa: E402

SIZE = 320


def save(img, root, label, name):
    d = os.path.join(root, CLASSES[label])
    os.makedirs(d, exist_ok=True)
    img.save(os.path.join(d, name), "JPEG", quality=92)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--train", required=True)
    p.add_argument("--val", required=True)
    p.add_argument("--muell")
    p.add_argument("--backgrounds", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--limit", type=int)
    a = p.parse_args()
    marker = os.path.join(a.out, "done.json")
    if os.path.exists(marker):
        done = json.load(open(marker))
        if done.get("seed") == a.seed and done.get("limit") == a.limit:
            print(f"{a.out} already holds these sets (seed {a.seed})")
            return
        os.remove(marker)
    rng = np.random.default_rng(a.seed)
    heldout_bg = load_backgrounds(ensure_packages(a.backgrounds, HELDOUT_PACKAGES))
    train_bg = load_backgrounds(ensure_packages(a.backgrounds, TRAIN_PACKAGES))
    for name in ["val-heldout-bg", "muell-holdout", "muell-holdout-bg", "train-composites"]:
        shutil.rmtree(os.path.join(a.out, name), ignore_errors=True)

    for path, label in image_folder(a.val)[:a.limit]:
        photo = _open(path, SIZE)
        item = board_item(photo)
        stem = os.path.splitext(os.path.basename(path))[0]
        for k in range(2):
            img = composite_view(photo, item, rng, SIZE, heldout_bg)
            save(img, os.path.join(a.out, "val-heldout-bg"), label, f"{stem}-{k}.jpg")
    if a.muell and os.path.isdir(a.muell):
        for path, label in image_folder(a.muell)[:a.limit]:
            if not muell_heldout(path):
                continue
            photo = _open(path, 640)
            stem = os.path.splitext(os.path.basename(path))[0]
            save(photo, os.path.join(a.out, "muell-holdout"), label, f"{stem}.jpg")
            item = black_item(_open(path, SIZE))
            if item is not None:
                img = composite_view(None, item, rng, SIZE, heldout_bg)
                save(img, os.path.join(a.out, "muell-holdout-bg"), label, f"{stem}.jpg")
    for i, it in enumerate(load_items(a.train, a.muell, limit=a.limit)):
        img = composite_view(it["photo"], it["item"], rng, SIZE, train_bg)
        save(img, os.path.join(a.out, "train-composites"), it["label"], f"{i:05d}.jpg")
    counts = {}
    for name in sorted(os.listdir(a.out)):
        if os.path.isdir(os.path.join(a.out, name)):
            counts[name] = sum(len(fs) for _, _, fs in os.walk(os.path.join(a.out, name)))
            print(f"{name}: {counts[name]} images")
    with open(os.path.join(a.out, "done.json"), "w") as f:
        json.dump({"seed": a.seed, "limit": a.limit, "counts": counts}, f)


if __name__ == "__main__":
    main()
