"""Joins the ckpt.part* files of a GPU sweep (training/gpu/sweep.py) into the model.pt and train.json that
`npm run train -- --checkpoint <dir>/model.pt` finalizes."""

import glob
import io
import json
import os
import sys

import numpy as np
import torch


def main(src, dst):
    parts = sorted(glob.glob(os.path.join(src, "ckpt.part*")), key=lambda p: int(p.rsplit("part", 1)[1]))
    with np.load(io.BytesIO(b"".join(open(p, "rb").read() for p in parts))) as d:
        state = {k: torch.from_numpy(d[k].astype(np.float32) if d[k].dtype == np.float16 else d[k]) for k in d.files}
    os.makedirs(dst, exist_ok=True)
    torch.save(state, os.path.join(dst, "model.pt"))
    sweep = json.load(open(os.path.join(src, "sweep.json")))
    run = next(r for r in sweep["results"][sweep["chosen"]]["runs"] if r["seed"] == 0)
    run["gpuSweep"] = {k: sweep[k] for k in ("chosen", "rule", "seconds", "gpu", "scores")}
    json.dump(run, open(os.path.join(dst, "train.json"), "w"), indent=2)


if __name__ == "__main__":
    main(*sys.argv[1:3])
