"""Views per second that N processes make (the data side of a GPU run), to size a sweep before it runs."""

import argparse
import os
import pickle
import sys
import time
from multiprocessing import Pool

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
from backgrounds import TRAIN_PACKAGES, ensure_packages, load_backgrounds  # noqa: E402
from views import Views  # noqa: E402

A = None


def count(seed):
    items, textures = A["items"], A["textures"]
    views = Views(items, textures, np.random.default_rng(seed), 0.25)
    n, t = 0, time.time()
    while time.time() - t < A["seconds"]:
        views.batch(8, A["size"])
        n += 8
    return n / (time.time() - t)


def main():
    global A
    p = argparse.ArgumentParser()
    p.add_argument("--items", required=True)
    p.add_argument("--backgrounds", required=True)
    p.add_argument("--size", type=int, default=144)
    p.add_argument("--procs", type=int, default=os.cpu_count())
    p.add_argument("--seconds", type=float, default=10)
    a = p.parse_args()
    with open(a.items, "rb") as f:
        items = pickle.load(f)
    A = {"items": items, "textures": load_backgrounds(ensure_packages(a.backgrounds, TRAIN_PACKAGES)),
         "size": a.size, "seconds": a.seconds}
    with Pool(a.procs) as pool:
        rates = pool.map(count, range(a.procs))
    print(f"views/s at {a.size} px: {sum(rates):.0f} with {a.procs} processes ({np.mean(rates):.1f} each)")


if __name__ == "__main__":
    main()
