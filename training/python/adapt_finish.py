"""What `adapt.py` trained, made servable: the ONNX export (BatchNorm was already folded), the temperature
and review thresholds from the out-of-fold predictions on the site's photos, reference embeddings that hold
the site's photos beside the replayed base photos, and the cross-validated metrics.

minConfidence is the lowest value (0.01 grid) at which the out-of-fold predictions that stay unflagged are
at least --target right; maxDistance is the --distance-quantile of the reference photos' own leave-one-out
k-NN distances, so a photo like the site's or the base's is familiar.
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from calibrate import ece, knn_distance, nll, normalize, softmax  # noqa: E402
from export import store_half  # noqa: E402
from folded import folded_resnet50  # noqa: E402


def export(state, out, size, classes):
    model = folded_resnet50(classes)
    model.load_state_dict(state)
    model.eval()
    torch.onnx.export(model, torch.zeros(1, 3, size, size), out, input_names=["input"],
                      output_names=["logits", "embedding"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}, "embedding": {0: "batch"}},
                      opset_version=13, do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL)
    store_half(out)


def references(emb, dims):
    ref = normalize(emb)
    mean = ref.mean(0)
    _, _, vt = np.linalg.svd(ref - mean, full_matrices=False)
    proj = vt[:min(dims, vt.shape[0])].T.astype(np.float32)
    mean16, proj16 = mean.astype(np.float16), proj.astype(np.float16)
    refs16 = normalize((ref - mean16.astype(np.float32)) @ proj16.astype(np.float32)).astype(np.float16)
    return mean16, proj16, refs16


def loo_distances(refs, k):
    """Each reference's k-NN distance to the others (itself left out)."""
    return knn_distance(refs, refs, k + 1)


def metrics(probs, labels, classes):
    pred = probs.argmax(1)
    per = {}
    for i, c in enumerate(classes):
        tp = int(((pred == i) & (labels == i)).sum())
        fp, fn = int(((pred == i) & (labels != i)).sum()), int(((pred != i) & (labels == i)).sum())
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        per[c] = {"precision": prec, "recall": rec, "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
                  "support": int((labels == i).sum())}
    present = [c for c in classes if per[c]["support"] > 0]
    return {"n": int(len(labels)), "accuracy": float((pred == labels).mean()),
            "macroF1": float(np.mean([per[c]["f1"] for c in present])), "perClass": per}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", required=True, help="adapt.py's output directory")
    p.add_argument("--classes", required=True)
    p.add_argument("--onnx", required=True)
    p.add_argument("--ref", required=True)
    p.add_argument("--out-json", required=True)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--base-temperature", type=float, default=1.0)
    p.add_argument("--target", type=float, default=0.9)
    p.add_argument("--distance-quantile", type=float, default=0.95)
    p.add_argument("--dims", type=int, default=128)
    p.add_argument("--k", type=int, default=10)
    a = p.parse_args()
    classes = a.classes.split(",")
    d = np.load(os.path.join(a.work, "adapt.npz"))
    export(torch.load(os.path.join(a.work, "model.pt")), a.onnx, a.size, len(classes))

    labels, oof = d["site_labels"], d["oof_logits"]
    cv = len(d["fold"]) > 0
    if cv:
        grid = np.arange(0.3, 5.0, 0.01)
        temperature = float(grid[np.argmin([nll(oof, labels, t) for t in grid])])
    else:  # nothing held out to fit on: keep the base model's
        temperature = a.base_temperature
    mean16, proj16, refs16 = references(np.concatenate([d["site_emb"], d["replay_emb"]]), a.dims)
    blob = np.concatenate([mean16.ravel(), proj16.ravel(), refs16.ravel()]).astype("<f2").tobytes()
    with open(a.ref, "wb") as f:
        f.write(blob)
    dist = loo_distances(refs16.astype(np.float32), a.k)
    n_site = len(labels)
    max_distance = float(np.quantile(dist, a.distance_quantile))
    site_dist = dist[:n_site]

    out = {"temperature": temperature, "cv": cv}
    review = {"minConfidence": 0.5, "maxDistance": max_distance, "k": a.k,
              "reference": {"file": os.path.basename(a.ref), "sha256": hashlib.sha256(blob).hexdigest(),
                            "embedding": int(d["site_emb"].shape[1]), "dims": int(refs16.shape[1]),
                            "count": int(refs16.shape[0])}}
    if cv:
        probs = softmax(oof / temperature)
        conf, correct = probs.max(1), probs.argmax(1) == labels
        familiar = site_dist <= max_distance
        chosen = None
        for c in np.arange(0.0, 0.96, 0.01):
            keep = familiar & (conf >= c)
            if keep.any() and correct[keep].mean() >= a.target:
                chosen = round(float(c), 2)
                break
        review["minConfidence"] = chosen if chosen is not None else 0.95
        keep = familiar & (conf >= review["minConfidence"])
        base_probs = softmax(d["base_logits"] / a.base_temperature)
        out["crossValidation"] = {
            **metrics(probs, labels, classes),
            "folds": int(d["fold"].max()) + 1,
            "baseAccuracy": float((base_probs.argmax(1) == labels).mean()),
            "ece": {"before": ece(softmax(oof).max(1), correct), "after": ece(conf, correct), "bins": 15},
            "review": {"target": a.target, "reached": chosen is not None, "flaggedRate": float(1 - keep.mean()),
                       "unflaggedAccuracy": float(correct[keep].mean()) if keep.any() else None},
        }
    out["review"] = review
    replay_pred = d["replay_logits"].argmax(1)
    out["replayAccuracy"] = float((replay_pred == d["replay_labels"]).mean())
    with open(a.out_json, "w") as f:
        json.dump(out, f, indent=2)
    print(json.dumps({k: v for k, v in out.items() if k != "review"}), file=sys.stderr)


if __name__ == "__main__":
    main()
