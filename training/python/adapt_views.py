"""The views `adapt.py` trains on: a site's photos as served (stretched to the square input) and lightly
augmented, and replayed base training photos as the base recipe showed them."""

import numpy as np
from PIL import Image, ImageOps

from composite import MEAN_BGR, _jitter, _photo_effects, original_view

__all__ = ["MEAN_BGR", "load_photo", "plain_view", "site_view", "trashnet_view"]
MAX_SIDE = 512


def load_photo(path):
    img = Image.open(path)
    img.draft("RGB", (MAX_SIDE, MAX_SIDE))
    img = ImageOps.exif_transpose(img).convert("RGB")
    img.thumbnail((MAX_SIDE, MAX_SIDE))
    return img


def plain_view(photo, size):
    """What the served path computes: the whole photo stretched to the input size."""
    return photo.resize((size, size), Image.BILINEAR)


def site_view(photo, rng, size):
    """A crop that keeps most of the photo (a site's items can be small), mirrored, slightly rotated, with
    another camera's light and colour: views of the same scene, never of another label."""
    w, h = photo.size
    area = rng.uniform(0.55, 1.0)
    aspect = np.exp(rng.uniform(-0.2, 0.2))
    cw = int(min(w, w * np.sqrt(area * aspect)))
    ch = int(min(h, h * np.sqrt(area / aspect)))
    x, y = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
    img = photo.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    if rng.random() < 0.5:
        img = img.rotate(rng.uniform(-12, 12), resample=Image.BILINEAR)
    img = _jitter(img, rng, 0.25)
    if rng.random() < 0.6:
        img = _photo_effects(img, rng)
    return img.resize((size, size), Image.BILINEAR)


def trashnet_view(photo, rng, size):
    return original_view(photo, rng, size)
