"""Backgrounds to composite items onto: photo textures from Debian packages plus procedural surfaces.

Training and the robustness set use disjoint packages, so the robustness set measures backgrounds the model
never saw. Every source and licence is listed in docs/model.md.
"""

import io
import os
import subprocess
import zipfile

import numpy as np
from PIL import Image

TRAIN_PACKAGES = ["openarena-081-textures", "mypaint-data-extras"]
HELDOUT_PACKAGES = ["colobot-common-textures", "gnome-backgrounds"]
# OpenArena texture folders that are not surfaces (skies, light sources, effects, liquids, decals).
SKIP = ("skies", "sfx", "light", "liquids", "flares", "common", "env/", "skin", "cosmo_sfx", "decal", "fog")


def ensure_packages(cache, packages):
    """Downloads and unpacks Debian packages with apt-get download (no root, no install)."""
    roots = []
    for pkg in packages:
        root = os.path.join(cache, "x", pkg)
        if not os.path.isdir(root):
            debs = os.path.join(cache, "debs")
            os.makedirs(debs, exist_ok=True)
            have = [f for f in os.listdir(debs) if f.startswith(pkg + "_")]
            if not have:
                subprocess.run(["apt-get", "download", pkg], cwd=debs, check=True)
                have = [f for f in os.listdir(debs) if f.startswith(pkg + "_")]
            tmp = root + ".tmp"
            subprocess.run(["rm", "-rf", tmp], check=True)
            os.makedirs(tmp)
            subprocess.run(["dpkg-deb", "-x", os.path.join(debs, have[0]), tmp], check=True)
            os.rename(tmp, root)
        roots.append(root)
    return roots


def _usable(img):
    return img.width >= 96 and img.height >= 96


def _load(data_or_path, max_side=384):
    img = Image.open(data_or_path)
    img.draft("RGB", (max_side, max_side))
    img = img.convert("RGB")
    img.thumbnail((max_side, max_side))
    return img


def load_backgrounds(roots):
    """Every image file under the unpacked packages (and inside OpenArena's pk3 archives) as RGB."""
    out = []
    for root in roots:
        for dirpath, _, files in os.walk(root):
            for name in sorted(files):
                path = os.path.join(dirpath, name)
                low = name.lower()
                try:
                    if low.endswith(".pk3"):
                        with zipfile.ZipFile(path) as z:
                            for entry in sorted(z.namelist()):
                                e = entry.lower()
                                if e.endswith((".jpg", ".tga", ".png")) and not any(s in e for s in SKIP):
                                    img = _load(io.BytesIO(z.read(entry)))
                                    if _usable(img):
                                        out.append(img)
                    elif low.endswith((".jpg", ".png", ".webp")) and "/interface" not in dirpath:
                        img = _load(path)
                        if _usable(img) and np.asarray(img).std() > 4:
                            out.append(img)
                except Exception:
                    continue
    return out


def _noise(rng, h, w, octaves=4):
    out = np.zeros((h, w), np.float32)
    amp = 1.0
    for o in range(octaves):
        gh, gw = max(2, h >> (octaves - o + 1)), max(2, w >> (octaves - o + 1))
        g = Image.fromarray((rng.random((gh, gw)) * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC)
        out += amp * (np.asarray(g, np.float32) / 255 - 0.5)
        amp /= 2
    return out


def procedural(rng, w, h):
    """Floors, concrete, asphalt, belts, wood, fabric-like weaves and gradients, in random colours."""
    kind = rng.integers(6)
    base = rng.uniform(20, 230, 3)
    if kind == 0:  # concrete / asphalt: speckle over low-frequency blotches
        v = 40 * _noise(rng, h, w) + rng.normal(0, rng.uniform(3, 20), (h, w))
        img = base * 0 + base.mean() + v[..., None] + rng.normal(0, 4, 3)
    elif kind == 1:  # conveyor belt: dark rubber with ribs
        period = rng.uniform(4, 20)
        axis = np.arange(w if rng.random() < 0.5 else h)
        ribs = 15 * (np.sin(axis / period * 2 * np.pi) > 0.6)
        ribs = ribs[None, :] if len(axis) == w else ribs[:, None]
        img = rng.uniform(15, 70) + ribs + 10 * _noise(rng, h, w) + rng.normal(0, 3, (h, w))
        img = np.repeat(np.asarray(img)[..., None], 3, -1)
    elif kind == 2:  # wood: stretched noise rings
        y = np.linspace(0, 1, h)[:, None]
        n = _noise(rng, h, w, 3)
        rings = np.sin((y * rng.uniform(10, 40) + 4 * n) * 2 * np.pi)
        img = base * (0.8 + 0.15 * rings[..., None]) + 10 * n[..., None]
    elif kind == 3:  # tiles
        s = rng.integers(16, 80)
        yy, xx = np.mgrid[0:h, 0:w]
        grout = ((yy % s) < 2) | ((xx % s) < 2)
        img = base + 15 * _noise(rng, h, w)[..., None]
        img[grout] = img[grout] * 0.5
    elif kind == 4:  # fabric / weave
        yy, xx = np.mgrid[0:h, 0:w]
        p = rng.uniform(2, 6)
        weave = np.sin(xx / p) * np.sin(yy / p)
        img = base + 20 * weave[..., None] + 10 * _noise(rng, h, w)[..., None]
    else:  # smooth gradient with noise (a wall, a table)
        y = np.linspace(0, 1, h)[:, None, None]
        img = base * (1 - y) + rng.uniform(20, 230, 3) * y + 8 * _noise(rng, h, w)[..., None]
    img = np.broadcast_to(img, (h, w, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def sample_background(rng, textures, w, h, p_procedural=0.3):
    if not textures or rng.random() < p_procedural:
        return procedural(rng, w, h)
    tex = textures[rng.integers(len(textures))]
    # Random zoom, then tile to cover the canvas, then a random crop.
    zoom = rng.uniform(0.5, 2.0) * max(w, h) / max(tex.size)
    tw, th = max(8, int(tex.width * zoom)), max(8, int(tex.height * zoom))
    tile = tex.resize((tw, th), Image.BILINEAR)
    if rng.random() < 0.5:
        tile = tile.transpose(Image.FLIP_LEFT_RIGHT)
    if rng.random() < 0.5:
        tile = tile.rotate(90, expand=True)
    canvas = Image.new("RGB", (w + tile.width, h + tile.height))
    for y in range(0, canvas.height, tile.height):
        for x in range(0, canvas.width, tile.width):
            canvas.paste(tile, (x, y))
    ox, oy = rng.integers(tile.width), rng.integers(tile.height)
    return canvas.crop((ox, oy, ox + w, oy + h))
