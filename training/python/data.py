"""The training material: TrashNet's train split plus the Müll-Roboter photos not held out for testing."""

import hashlib
import os
from multiprocessing import Pool

from PIL import Image

from masks import black_item, board_item

CLASSES = ["cardboard", "glass", "metal", "paper", "plastic", "trash"]
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".webp")
MUELL_HOLDOUT = 0.3


def image_folder(root, classes=CLASSES):
    """[(path, class index)] of root/<class>/<image>, sorted; classes missing under root are skipped."""
    out = []
    for i, c in enumerate(classes):
        d = os.path.join(root, c)
        if os.path.isdir(d):
            out += [(os.path.join(d, f), i) for f in sorted(os.listdir(d)) if f.lower().endswith(IMAGE_EXT)]
    return out


def muell_heldout(path):
    """A fixed 30 % of Müll-Roboter, chosen by a hash of the file name, is never used for training."""
    h = int(hashlib.sha256(os.path.basename(path).encode()).hexdigest()[:8], 16)
    return h / 0xFFFFFFFF < MUELL_HOLDOUT


def _open(path, max_side):
    img = Image.open(path)
    img.draft("RGB", (max_side, max_side))
    img = img.convert("RGB")
    img.thumbnail((max_side, max_side))
    return img


def _trashnet_item(args):
    path, label, max_side = args
    photo = _open(path, max_side)
    item = board_item(photo.resize((photo.width // 2 * 2, photo.height // 2 * 2)))
    return {"photo": photo, "item": item, "label": label, "source": "trashnet"}


def _muell_item(args):
    path, label, max_side = args
    return {"photo": None, "item": black_item(_open(path, max_side)), "label": label, "source": "muell"}


def load_items(trashnet_train, muell=None, max_side=320, limit=None, workers=1):
    """Dicts {photo, item, label, source}: photo is the whole picture (None where showing it would leak its
    setting, the black of Müll-Roboter), item the RGBA cut-out or None."""
    jobs = [(p, label, max_side) for p, label in image_folder(trashnet_train)[:limit]]
    mjobs = []
    if muell and os.path.isdir(muell):
        mjobs = [(p, label, max_side) for p, label in image_folder(muell)[:limit] if not muell_heldout(p)]
    if workers > 1:
        with Pool(workers) as pool:
            items, muell_items = pool.map(_trashnet_item, jobs, 8), pool.map(_muell_item, mjobs, 8)
    else:
        items, muell_items = list(map(_trashnet_item, jobs)), list(map(_muell_item, mjobs))
    return items + [it for it in muell_items if it["item"] is not None]
