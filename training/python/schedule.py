"""The learning-rate schedule and the weight average of the serving-size epochs (train.py)."""

import math

import torch


def lr_factor(step, warmup, total, a):
    """Linear warm-up, then cosine to 0; with --final-lr the serving-size epochs get their own, smaller cosine,
    so that the weights (not only BatchNorm's statistics) adapt to the larger input."""
    if step < warmup:
        return (step + 1) / warmup
    main_steps = a.epochs * a.steps
    if a.final_lr is None:
        start, end, scale = warmup, total, 1.0
    elif step < main_steps:
        start, end, scale = warmup, main_steps, 1.0
    else:
        start, end, scale = main_steps, total, a.final_lr
    return scale * 0.5 * (1 + math.cos(math.pi * (step - start) / max(1, end - start)))


def averages_at(step, a):
    """Whether the weight average takes a snapshot after this step: every --average-every steps of the
    serving-size epochs after the first one, so that BatchNorm's running statistics have settled at that size
    before any snapshot (with a single serving-size epoch, over that epoch)."""
    if not a.average:
        return False
    main_steps = a.epochs * a.steps
    first = main_steps + (a.steps if a.final_epochs > 1 else 0)
    return step >= first and (step + 1 - first) % a.average_every == 0


class WeightAverage:
    """Uniform running mean of a model's floating-point state (weights and BatchNorm's running statistics),
    as in stochastic weight averaging; averaging the statistics too spares a recomputation pass, which is
    sound here because the snapshots lie close together at a small learning rate and the same input size."""

    def __init__(self):
        self.n = 0
        self.state = None

    @torch.no_grad()
    def add(self, model):
        self.n += 1
        sd = model.state_dict()
        if self.state is None:
            self.state = {k: v.detach().float().clone() if v.is_floating_point() else v.clone() for k, v in sd.items()}
            return
        for k, v in sd.items():
            if v.is_floating_point():
                self.state[k] += (v.float() - self.state[k]) / self.n
            else:
                self.state[k] = v.clone()

    def load_into(self, model):
        model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in self.state.items()})
