"""Recovers item masks: TrashNet photographs items on a near-white board, Müll-Roboter cut them out onto black.

An item becomes an RGBA image (alpha = mask, feathered, and partly transparent where a clear item shows the
board through itself), or None when the photo has no usable board to separate from (the item fills the
frame, about 30 % of TrashNet); those are composited as whole rectangles, like every other item sometimes is,
so the rectangle itself never predicts a class.
"""

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage

BAND = 8


def _border(a):
    h, w = a.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    band = (yy < BAND) | (yy >= h - BAND) | (xx < BAND) | (xx >= w - BAND)
    return band, yy / h - 0.5, xx / w - 0.5


def _fit_board(a):
    """Quadratic surface per channel fitted to the border band, refitted without dark outliers (an item
    touching the edge). Returns the board image and the share of the band that looks like board."""
    band, y, x = _border(a)
    design = np.stack([np.ones_like(x), x, y, x * x, y * y, x * y], -1)
    keep = band.copy()
    bright = a.mean(-1)
    for _ in range(2):
        med = np.median(bright[keep])
        keep = band & (bright > 0.8 * med) & (np.abs(bright - med) < 60)
        if keep.sum() < 50:
            return None, 0.0
        coef, *_ = np.linalg.lstsq(design[keep], a[keep], rcond=None)
    board = design @ coef
    return board, keep.sum() / band.sum()


def _clean(mask, min_share=0.005):
    mask = ndimage.binary_closing(mask, iterations=3)
    mask = ndimage.binary_fill_holes(mask)
    mask = ndimage.binary_opening(mask, iterations=2)
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    sizes = ndimage.sum(mask, labels, range(1, n + 1))
    keep = [i + 1 for i, s in enumerate(sizes) if s >= max(min_share * mask.size, 0.1 * sizes.max())]
    return np.isin(labels, keep)


def _otsu(values):
    hist, edges = np.histogram(values, bins=128)
    p = hist / hist.sum()
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    m = np.cumsum(p * centers)
    between = (m[-1] * w0 - m) ** 2 / np.maximum(w0 * (1 - w0), 1e-9)
    return centers[np.argmax(between)]


def _rgba(img, alpha):
    alpha_img = Image.fromarray((alpha * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1))
    rgba = img.convert("RGBA")
    rgba.putalpha(alpha_img)
    box = alpha_img.point(lambda v: 255 if v > 8 else 0).getbbox()
    return rgba.crop(box) if box else None


def board_item(img):
    """RGBA item from a TrashNet photo, or None when the board cannot be separated."""
    a = np.asarray(img, dtype=np.float32)
    board, share = _fit_board(a)
    if board is None or share < 0.6 or board.mean() < 120:
        return None
    diff = np.sqrt(((a - board) ** 2).sum(-1))
    # A shadow on the board is a darker, same-hued, smooth patch; an item has its own hue or texture.
    ratio = a.sum(-1) / np.maximum(board.sum(-1), 1)
    chroma = np.abs(a / np.maximum(a.sum(-1, keepdims=True), 1) - board / board.sum(-1, keepdims=True)).sum(-1)
    bright = ndimage.gaussian_filter(a.mean(-1), 1)
    grad = ndimage.gaussian_filter(np.hypot(ndimage.sobel(bright, 0), ndimage.sobel(bright, 1)), 2)
    shadow = (ratio > 0.3) & (ratio < 0.98) & (chroma < 0.03) & (grad < 25)
    diff = np.where(shadow, 0.0, diff)
    t = float(np.clip(_otsu(diff), 18, 45))
    mask = _clean(diff > t)
    area = mask.mean()
    if area < 0.02 or area > 0.8:
        return None
    # Clear glass and plastic show the board through themselves: let some of the new background through.
    soft = np.clip((diff - 0.5 * t) / t, 0.0, 1.0)
    alpha = np.where(mask, np.maximum(0.4, soft), 0.0)
    return _rgba(img, alpha)


def black_item(img):
    """RGBA item from a Müll-Roboter photo (object on pure black)."""
    a = np.asarray(img, dtype=np.float32)
    mask = _clean(a.max(-1) > 14)
    if mask.mean() < 0.01:
        return None
    return _rgba(img, mask.astype(np.float32))
