"""Training views, generated inline (CPU: the two cores are busy with the model anyway) or by DataLoader
workers (CUDA: one process cannot composite fast enough to feed a GPU).

Step s of the schedule is always made by worker s % W with that worker's own generator, so a run is
reproducible for a given seed and worker count.
"""

import math

import numpy as np
import torch

from composite import composite_view, original_view, to_tensor
from data import CLASSES


class Views:
    def __init__(self, items, textures, rng, p_original):
        self.items, self.textures, self.rng, self.p_original = items, textures, rng, p_original
        counts = np.bincount([it["label"] for it in items], minlength=len(CLASSES))
        w = np.array([1 / math.sqrt(counts[it["label"]]) for it in items])
        self.weights = w / w.sum()

    def batch(self, n, size):
        rng = self.rng
        idx = rng.choice(len(self.items), n, p=self.weights)
        xs, ys = [], []
        for i in idx:
            it = self.items[i]
            if it["photo"] is not None and rng.random() < self.p_original:
                img = original_view(it["photo"], rng, size)
            else:
                clutter = []
                if rng.random() < 0.15:
                    picks = rng.integers(len(self.items), size=rng.integers(1, 4))
                    clutter = [self.items[j]["item"] for j in picks if self.items[j]["item"] is not None]
                img = composite_view(it["photo"], it["item"], rng, size, self.textures, clutter)
            xs.append(to_tensor(img))
            ys.append(it["label"])
        return torch.from_numpy(np.stack(xs)), torch.tensor(ys)


class _Schedule(torch.utils.data.IterableDataset):
    def __init__(self, views, sizes, batch, seed, workers):
        self.views, self.sizes, self.batch, self.seed, self.workers = views, sizes, batch, seed, workers

    def __iter__(self):
        w = torch.utils.data.get_worker_info().id
        self.views.rng = np.random.default_rng([self.seed, w])
        for step in range(w, len(self.sizes), self.workers):
            yield self.views.batch(self.batch, self.sizes[step])


def view_batches(views, sizes, batch, seed, workers):
    """Yields (x, y) for each step; sizes[s] is the view size of step s."""
    if workers <= 0:
        for size in sizes:
            yield views.batch(batch, size)
        return
    # DataLoader hands out worker 0's first batch, then worker 1's, ...: step order is kept.
    loader = torch.utils.data.DataLoader(_Schedule(views, sizes, batch, seed, workers), batch_size=None,
                                         num_workers=workers, prefetch_factor=4, persistent_workers=False,
                                         pin_memory=torch.cuda.is_available())
    yield from loader
