"""Training views: an item (segmented, or as a whole rectangle) placed on a background with random scale,
position, rotation, shadow, lighting, colour, blur, noise and JPEG quality. Every choice is drawn
independently of the class, so no treatment can stand in for a label.
"""

import io

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from backgrounds import sample_background

ASPECTS = [(4, 3), (3, 4), (1, 1), (16, 9)]


def _jitter(img, rng, s=0.3):
    for enh in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        img = enh(img).enhance(rng.uniform(1 - s, 1 + s))
    return img


def _photo_effects(img, rng):
    """What a different camera and light do to the whole picture."""
    a = np.asarray(img, np.float32)
    h, w = a.shape[:2]
    if rng.random() < 0.5:  # uneven light
        ang = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w]
        ramp = (np.cos(ang) * xx / w + np.sin(ang) * yy / h)
        a *= (1 + rng.uniform(0.1, 0.5) * (ramp - ramp.mean()))[..., None]
    if rng.random() < 0.5:  # colour cast
        a *= rng.uniform(0.85, 1.15, 3)
    if rng.random() < 0.3:
        a += rng.normal(0, rng.uniform(2, 10), a.shape)
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))
    if rng.random() < 0.5:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(rng.integers(30, 92)))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img


def _rect_item(photo, rng):
    """The whole photo as a flat rectangular object (an item that fills its frame, or a crop with board)."""
    w, h = photo.size
    s = rng.uniform(0.6, 1.0)
    cw, ch = int(w * s), int(h * s)
    x, y = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
    return photo.crop((x, y, x + cw, y + ch)).convert("RGBA")


def original_view(photo, rng, size):
    """The untouched setting (white board), random-resized-cropped, as served: stretched to a square."""
    w, h = photo.size
    s = np.sqrt(rng.uniform(0.45, 1.0))
    cw, ch = int(w * s), int(h * s)
    x, y = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
    img = photo.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    img = _jitter(img, rng, 0.25)
    return _photo_effects(img, rng).resize((size, size), Image.BILINEAR)


def composite_view(photo, item, rng, size, textures, clutter=()):
    aw, ah = ASPECTS[rng.integers(len(ASPECTS))]
    cw = int(size * 1.25)
    ch = int(cw * ah / aw)
    bg = _jitter(sample_background(rng, textures, cw, ch), rng, 0.3)
    rect = photo is not None and (item is None or rng.random() < 0.25)
    obj = _rect_item(photo, rng) if rect else item
    for extra in clutter:  # small distractors under the main item
        obj_c = extra.copy()
        obj_c.thumbnail((int(min(cw, ch) * rng.uniform(0.15, 0.3)),) * 2)
        obj_c = obj_c.rotate(rng.uniform(0, 360), expand=True, resample=Image.BILINEAR)
        bg.paste(obj_c, (int(rng.integers(0, cw)) - obj_c.width // 2, int(rng.integers(0, ch)) - obj_c.height // 2), obj_c)
    target = min(cw, ch) * (rng.uniform(0.55, 1.05) if rect else rng.uniform(0.4, 0.95))
    k = target / max(obj.size)
    obj = obj.resize((max(4, int(obj.width * k)), max(4, int(obj.height * k))), Image.BILINEAR)
    if rng.random() < 0.5:
        obj = obj.transpose(Image.FLIP_LEFT_RIGHT)
    angle = rng.uniform(-25, 25) if rect else rng.uniform(-180, 180)
    obj = obj.rotate(angle, expand=True, resample=Image.BILINEAR)
    rgb, alpha = obj.convert("RGB"), obj.getchannel("A")
    rgb = _jitter(rgb, rng, 0.25)
    x = int(rng.integers(-obj.width // 6, max(1, cw - obj.width * 5 // 6)))
    y = int(rng.integers(-obj.height // 6, max(1, ch - obj.height * 5 // 6)))
    if rng.random() < 0.6:  # a soft cast shadow
        shadow = alpha.filter(ImageFilter.GaussianBlur(rng.uniform(2, 10)))
        dx, dy = (rng.uniform(-0.06, 0.06, 2) * min(cw, ch)).astype(int)
        dark = Image.new("RGB", bg.size, (0, 0, 0))
        sm = Image.new("L", bg.size, 0)
        sm.paste(shadow.point(lambda v, s=rng.uniform(0.25, 0.6): int(v * s)), (x + dx, y + dy))
        bg = Image.composite(dark, bg, sm)
    bg.paste(rgb, (x, y), alpha)
    return _photo_effects(bg, rng).resize((size, size), Image.BILINEAR)


MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)


def to_tensor(img):
    """RGB PIL -> caffe-preprocessed BGR CHW float32, as the manifest tells @garbage/inference to do."""
    a = np.asarray(img, np.float32)[:, :, ::-1] - MEAN_BGR
    return np.ascontiguousarray(a.transpose(2, 0, 1))
