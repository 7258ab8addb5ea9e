"""GPU call 2 (carry .devbundle/weights and .devbundle/sets; call 1 left the data and the item cache in
$GPU_WORK on the warm machine): trains every seed of a config in parallel on the one GPU, config after config while the
time allows, measures each run on val and the robustness sets, and returns one checkpoint chosen by a rule
fixed before the sweep ran:

  configs whose mean val accuracy over seeds is at least 0.93 compete on their mean accuracy over the three
  robustness sets; if none reaches 0.93, all complete configs compete on the mean over all four sets.
  The winner's seed 0 is returned (never the best seed).

The checkpoint comes back as float16 conv kernels (float32 for the rest) in <16 MB parts, the limit on a
returned file; training/gpu/unpack.py turns them into the model.pt that `npm run train -- --checkpoint` takes.
"""

import argparse
import io
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
B = os.path.join(ROOT, ".devbundle")
# A call's carry replaces .devbundle/ on the lent machine: the data and the runs live outside the checkout.
WORK = os.environ.get("GPU_WORK", "/tmp/garbage-gpu")
# long144 (v5), long144-orig40 and final224 ran before (docs/model.md). v6 is train.py's defaults (swa224: the
# 224-px epochs at a fifth of the learning rate, the weights averaged over them); its seeds give the recipe's
# spread, and the same without the average measures what the averaging adds.
CONFIGS = {
    "swa224": ["--size", "144"],
    "swa224-no-average": ["--size", "144", "--no-average"],
}
SETS = ["val-heldout-bg", "muell-holdout", "muell-holdout-bg"]


def launch(name, seed, workers, extra):
    out = os.path.join(WORK, "runs", f"{name}-s{seed}")
    os.makedirs(out, exist_ok=True)
    d = os.path.join(WORK, "data")
    cmd = [sys.executable, os.path.join(ROOT, "training/python/train.py"), "--train", f"{d}/trashnet/train",
           "--val", f"{d}/trashnet/val", "--muell", f"{d}/muell", "--backgrounds", f"{d}/bg", "--out", out,
           "--init", f"{B}/weights/init-half.npz", "--items-cache", f"{WORK}/items.pkl", "--seed", str(seed),
           "--workers", str(workers), "--threads", "1",
           "--eval", ",".join([f"{d}/trashnet/val"] + [f"{B}/sets/{s}" for s in SETS]), *CONFIGS[name], *extra]
    log = open(os.path.join(out, "log.txt"), "w")
    return out, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--deadline", type=float, default=480, help="seconds after which unfinished runs are stopped")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--out", default=os.environ.get("OUT", "/tmp/out"))
    p.add_argument("--extra", default="", help="train.py arguments appended to every config (a local dry run)")
    a = p.parse_args()
    t0 = time.time()
    workers = max(1, (os.cpu_count() - a.seeds) // a.seeds)
    results, wave_time = {}, None
    for name in CONFIGS:
        if wave_time and time.time() - t0 + 1.1 * wave_time > a.deadline:
            print(f"{name}: skipped, {wave_time:.0f} s would pass the deadline", flush=True)
            continue
        tw = time.time()
        runs = [launch(name, s, workers, a.extra.split()) for s in range(a.seeds)]
        for out, proc in runs:
            try:
                proc.wait(timeout=max(1, a.deadline - (time.time() - t0)))
            except subprocess.TimeoutExpired:
                proc.kill()
        wave_time = time.time() - tw
        done = []
        for out, proc in runs:
            path = os.path.join(out, "train.json")
            if proc.returncode == 0 and os.path.exists(path):
                done.append(json.load(open(path)))
            else:
                print(open(os.path.join(out, "log.txt")).read()[-3000:], flush=True)
        results[name] = {"runs": done, "waveSeconds": round(wave_time)}
        print(name, json.dumps([{"seed": r["seed"], "minutes": r["minutes"], **r["final"]} for r in done]), flush=True)

    def score(name):
        runs = results[name]["runs"]
        val = np.mean([r["final"]["val"] for r in runs])
        robust = np.mean([np.mean([r["final"][s] for s in SETS]) for r in runs])
        return val, robust

    complete = [n for n in results if len(results[n]["runs"]) == a.seeds]
    passing = [n for n in complete if score(n)[0] >= 0.93]
    pool = passing or complete
    key = (lambda n: score(n)[1]) if passing else (lambda n: (score(n)[0] + 3 * score(n)[1]) / 4)
    chosen = max(pool, key=key) if pool else None
    os.makedirs(a.out, exist_ok=True)
    summary = {"chosen": chosen, "rule": "val>=0.93 then robustness mean, else mean of 4 sets; seed 0",
               "seconds": round(time.time() - t0), "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
               "scores": {n: dict(zip(["val", "robustness"], map(float, score(n)))) for n in complete},
               "results": results}
    json.dump(summary, open(os.path.join(a.out, "sweep.json"), "w"), indent=1)
    print(json.dumps(summary["scores"]), "chosen", chosen, flush=True)
    if chosen is None:
        return
    state = torch.load(os.path.join(WORK, "runs", f"{chosen}-s0", "model.pt"), map_location="cpu")
    arrays = {k: (v.half() if v.ndim == 4 else v).numpy() for k, v in state.items()}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data, part = buf.getvalue(), 15 * 1024 * 1024
    for i in range(0, len(data), part):
        with open(os.path.join(a.out, f"ckpt.part{i // part}"), "wb") as f:
            f.write(data[i:i + part])
    print(f"checkpoint {len(data)} bytes in {(len(data) + part - 1) // part} parts", flush=True)


if __name__ == "__main__":
    main()
