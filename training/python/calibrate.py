"""Fits what the manifest needs beyond the weights, from outputs of the exported model as @garbage/inference
computes them (training/src/embed.ts):

- temperature: softmax temperature minimising NLL on val.
- reference embeddings: the pooled features of the training images (originals and one composite each),
  L2-normalised, centred and projected by PCA to --dims, stored as float16.
- review thresholds: for each candidate quantile, maxDistance is that quantile of val's k-NN distances (val
  is in-distribution), then minConfidence is the largest value on a 0.01 grid up to 0.95 that keeps the share
  of val flagged within --flag-budget; with --select-on, the candidate whose worst accuracy on the confident
  part of those sets is highest wins (a selection on them, recorded in the manifest).
"""

import argparse
import hashlib
import json
import os

import numpy as np


def load(dir_, name):
    meta = json.load(open(os.path.join(dir_, f"{name}.json")))
    raw = np.fromfile(os.path.join(dir_, f"{name}.f32"), "<f4")
    n, c, e = meta["n"], meta["logitsWidth"], meta["embeddingWidth"]
    return raw[: n * c].reshape(n, c), raw[n * c:].reshape(n, e), np.array(meta["labels"])


def softmax(z):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def nll(logits, labels, t):
    p = softmax(logits / t)
    return -np.log(p[np.arange(len(labels)), labels] + 1e-12).mean()


def ece(conf, correct, bins=15):
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(total)


def normalize(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def knn_distance(queries, refs, k):
    sims = queries @ refs.T
    kth = np.sort(sims, axis=1)[:, -min(k, refs.shape[0])]
    return 1 - kth


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--embeddings", required=True)
    p.add_argument("--val", default="val")
    p.add_argument("--reference", default="train,train-composites")
    p.add_argument("--out-ref", required=True)
    p.add_argument("--out-json", required=True)
    p.add_argument("--dims", type=int, default=128)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--distance-quantiles", default="0.9,0.95,0.975",
                   help="candidates for maxDistance, as quantiles of val's distances")
    p.add_argument("--select-on", default="",
                   help="embedded sets (comma-separated): pick the candidate whose worst confident accuracy "
                        "over them is highest; without it, the last candidate")
    p.add_argument("--flag-budget", type=float, default=0.12)
    a = p.parse_args()

    logits, emb, labels = load(a.embeddings, a.val)
    grid = np.arange(0.3, 5.0, 0.01)
    temperature = float(grid[np.argmin([nll(logits, labels, t) for t in grid])])
    conf1 = softmax(logits).max(1)
    prob = softmax(logits / temperature)
    conf = prob.max(1)
    correct = prob.argmax(1) == labels

    ref = normalize(np.concatenate([load(a.embeddings, n)[1] for n in a.reference.split(",")]))
    mean = ref.mean(0)
    _, _, vt = np.linalg.svd(ref - mean, full_matrices=False)
    dims = min(a.dims, vt.shape[0])
    proj = vt[:dims].T.astype(np.float32)
    refs = normalize((ref - mean) @ proj)
    # What the server will compute, from the float16 values it will read.
    mean16, proj16, refs16 = (x.astype(np.float16) for x in (mean, proj, refs))
    val_dist = knn_distance(normalize((normalize(emb) - mean16.astype(np.float32)) @ proj16.astype(np.float32)),
                            refs16.astype(np.float32), a.k)
    def project(e):
        return normalize((normalize(e) - mean16.astype(np.float32)) @ proj16.astype(np.float32))

    def thresholds(q):
        max_d = float(np.quantile(val_dist, q))
        min_c = 0.0
        for c in np.arange(0.0, 0.96, 0.01):
            if ((val_dist > max_d) | (conf < c)).mean() <= a.flag_budget:
                min_c = round(float(c), 2)
        return max_d, min_c

    others = []
    for name in filter(None, a.select_on.split(",")):
        lo, em, lab = load(a.embeddings, name)
        pr = softmax(lo / temperature)
        others.append((name, pr.max(1), pr.argmax(1) == lab, knn_distance(project(em), refs16.astype(np.float32), a.k)))
    candidates = []
    for q in [float(x) for x in a.distance_quantiles.split(",")]:
        max_d, min_c = thresholds(q)
        per_set = {}
        for name, c_, ok, d in others:
            keep = ~((d > max_d) | (c_ < min_c))
            per_set[name] = {"flaggedRate": float(1 - keep.mean()),
                             "confidentAccuracy": float(ok[keep].mean()) if keep.any() else None}
        worst = min((v["confidentAccuracy"] or 0.0 for v in per_set.values()), default=0.0)
        candidates.append({"quantile": q, "maxDistance": max_d, "minConfidence": min_c, "worst": worst,
                           "sets": per_set})
        print(json.dumps(candidates[-1]))
    chosen = max(candidates, key=lambda c: c["worst"]) if others else candidates[-1]
    max_distance, min_conf = chosen["maxDistance"], chosen["minConfidence"]
    unfamiliar = val_dist > max_distance
    flagged = unfamiliar | (conf < min_conf)

    blob = np.concatenate([mean16.ravel(), proj16.ravel(), refs16.ravel()]).astype("<f2").tobytes()
    with open(a.out_ref, "wb") as f:
        f.write(blob)
    out = {
        "temperature": temperature,
        "calibration": {"method": "temperature scaling on val NLL", "eceBefore": ece(conf1, correct),
                        "eceAfter": ece(conf, correct), "bins": 15},
        "review": {
            "minConfidence": min_conf,
            "maxDistance": max_distance,
            "k": a.k,
            "reference": {"file": os.path.basename(a.out_ref), "sha256": hashlib.sha256(blob).hexdigest(),
                          "embedding": int(emb.shape[1]), "dims": int(dims), "count": int(refs.shape[0])},
        },
        "reviewSelection": {
            "on": "val" + (f", candidates compared on {a.select_on}" if others else ""),
            "distanceQuantile": chosen["quantile"],
            "candidates": candidates,
            "flagBudget": a.flag_budget,
            "valFlaggedRate": float(flagged.mean()),
            "valConfidentAccuracy": float(correct[~flagged].mean()) if (~flagged).any() else None,
            "valAccuracy": float(correct.mean()),
        },
    }
    with open(a.out_json, "w") as f:
        json.dump(out, f, indent=2)
    print(json.dumps(out["reviewSelection"]))


if __name__ == "__main__":
    main()
