"""The learning-rate schedule and when the weight average of the serving-size epochs takes a snapshot (train.py)."""

import math


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
    main_steps = a.epochs * a.steps
    first = main_steps + (a.steps if a.final_epochs > 1 else 0)
    return step >= first and (step + 1 - first) % a.average_every == 0
