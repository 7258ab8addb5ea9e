import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { OnnxGraphBuilder } from "@garbage/onnx";
import * as ort from "onnxruntime-node";
import { beforeAll, describe, expect, it } from "vitest";
import { convertLayersModel, type LayersModelArtifacts, parseLayersModel, tfjsToOnnx } from "../src/index";
import { artifactsOf, buildToyResnet, buildToySequential, randomImages, tf, tfl } from "./tiny-keras";

const TOLERANCE = 1e-4;

async function runOnnx(
  model: Buffer,
  input: Float32Array,
  dims: number[],
  output: string,
): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model);
  const out = await session.run({ input: new ort.Tensor("float32", input, dims) });
  const tensor = out[output];
  if (!tensor) throw new Error(`no output ${output}`);
  return tensor.data as Float32Array;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] ?? 0) - (b[i] ?? Number.NaN)));
  return max;
}

describe("tfjs layers -> ONNX on a toy ResNet", () => {
  let keras: tfl.LayersModel;
  let artifacts: LayersModelArtifacts;

  beforeAll(async () => {
    await tf.setBackend("cpu");
    keras = buildToyResnet();
    artifacts = await artifactsOf(keras);
  });

  // 10 rows: SAME/stride 2 pads asymmetrically (0 top, 1 bottom); the second size changes every parity.
  for (const [h, w] of [
    [10, 11],
    [13, 16],
  ] as const) {
    it(`matches tfjs probabilities at ${h}x${w} with batch 3`, async () => {
      const { nhwc, nchw } = randomImages(3, h, w, h * 100 + w);
      const expected = (keras.predict(nhwc) as tf.Tensor).dataSync();
      const onnx = await convertLayersModel(artifacts, { outputName: "probs" });
      const got = await runOnnx(onnx, nchw, [3, 3, h, w], "probs");
      expect(got.every((v) => v > 0 && v < 1)).toBe(true);
      expect(maxAbsDiff(got, expected)).toBeLessThanOrEqual(TOLERANCE);
    });
  }

  it("exposes pre-softmax logits and intermediate features like the ResNet modes do", async () => {
    const { nhwc, nchw } = randomImages(2, 12, 12, 5);
    const gap = keras.getLayer("gap").output as tfl.SymbolicTensor;
    const featuresModel = tfl.model({ inputs: keras.inputs, outputs: gap });
    const features = (featuresModel.predict(nhwc) as tf.Tensor).dataSync();
    const [kernel, bias] = keras.getLayer("fc").getWeights();
    if (!kernel || !bias) throw new Error("fc has no weights");
    const expectedLogits = tf.add(tf.matMul(tf.tensor2d(features, [2, 6]), kernel), bias).dataSync();

    const onnxFeatures = await convertLayersModel(artifacts, { outputLayer: "gap", outputName: "features" });
    expect(maxAbsDiff(await runOnnx(onnxFeatures, nchw, [2, 3, 12, 12], "features"), features)).toBeLessThan(
      TOLERANCE,
    );
    const onnxLogits = await convertLayersModel(artifacts, {
      outputName: "logits",
      dropOutputActivation: true,
    });
    const logits = await runOnnx(onnxLogits, nchw, [2, 3, 12, 12], "logits");
    expect(maxAbsDiff(logits, expectedLogits)).toBeLessThan(TOLERANCE);
    expect(Math.max(...logits.map(Math.abs))).toBeGreaterThan(0.1);
  });

  it("folds conv batch norms, keeps the one after Add, and declares symbolic dims", () => {
    const graph = tfjsToOnnx(parseLayersModel(artifacts), { outputName: "probs" });
    const ops = graph.nodes.map((n) => n.opType);
    expect(ops.filter((op) => op === "BatchNormalization")).toHaveLength(1);
    expect(graph.nodes.find((n) => n.opType === "BatchNormalization")?.name).toBe("bn_add");
    expect(graph.nodes.find((n) => n.name === "c1")?.attributes.auto_pad).toEqual({ string: "SAME_UPPER" });
    // A 2x3 kernel: TF puts the odd row of padding at the bottom.
    expect(graph.nodes.find((n) => n.name === "c2")?.attributes.pads).toEqual({ ints: [0, 1, 1, 1] });
    expect(graph.inputs).toEqual([
      { name: "input", elemType: "float32", dims: ["batch", 3, "height", "width"] },
    ]);
    expect(graph.outputs).toEqual([{ name: "probs", elemType: "float32", dims: ["batch", 5] }]);
  });

  it("reads the same model from a model.json directory with split shards", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "tfjs-model-"));
    const bytes = new Uint8Array(artifacts.weightData as ArrayBuffer);
    // An odd split point makes sure weights straddling shard boundaries are reassembled.
    await writeFile(path.join(dir, "a.bin"), bytes.subarray(0, 1001));
    await writeFile(path.join(dir, "b.bin"), bytes.subarray(1001));
    const weightsManifest = [{ paths: ["a.bin", "b.bin"], weights: artifacts.weightSpecs }];
    await writeFile(
      path.join(dir, "model.json"),
      JSON.stringify({
        format: "layers-model",
        modelTopology: { model_config: artifacts.modelTopology },
        weightsManifest,
      }),
    );
    const fromDir = await convertLayersModel(dir);
    const fromMemory = await convertLayersModel(artifacts);
    expect(fromDir.equals(fromMemory)).toBe(true);
  });
});

describe("tfjs layers -> ONNX edge cases", () => {
  it("converts a Sequential model (tanh, sigmoid, fixed input size)", async () => {
    await tf.setBackend("cpu");
    const seq = buildToySequential();
    const { nhwc } = randomImages(2, 6, 7, 9);
    const x = tf.slice(nhwc, [0, 0, 0, 0], [2, 6, 7, 2]);
    const expected = (seq.predict(x) as tf.Tensor).dataSync();
    const onnx = await convertLayersModel(await artifactsOf(seq), { fixedSpatial: true });
    expect(OnnxGraphBuilder.fromModel(onnx).inputs[0]?.dims).toEqual(["batch", 2, 6, 7]);
    const nchw = tf.transpose(x, [0, 3, 1, 2]).dataSync() as Float32Array;
    expect(maxAbsDiff(await runOnnx(onnx, nchw, [2, 2, 6, 7], "output"), expected)).toBeLessThan(TOLERANCE);
  });

  it("refuses unknown layers, quantised or non-float32 weights, and dilation", async () => {
    const input = tfl.input({ shape: [4, 4, 3] });
    const flat = tfl.layers.flatten({ name: "flat" }).apply(input) as tfl.SymbolicTensor;
    const withFlatten = await artifactsOf(tfl.model({ inputs: input, outputs: flat }));
    await expect(convertLayersModel(withFlatten)).rejects.toThrow(/flat: unsupported layer type Flatten/);

    const conv = tfl.layers.conv2d({ filters: 2, kernelSize: 3, dilationRate: 2, name: "dil" }).apply(input);
    const dilated = await artifactsOf(tfl.model({ inputs: input, outputs: conv as tfl.SymbolicTensor }));
    await expect(convertLayersModel(dilated)).rejects.toThrow(/dil \(Conv2D\): dilated/);

    const [first, ...rest] = dilated.weightSpecs;
    if (!first) throw new Error("no weights");
    const quantised = { ...dilated, weightSpecs: [{ ...first, quantization: { dtype: "uint8" } }, ...rest] };
    await expect(convertLayersModel(quantised)).rejects.toThrow(/quantised/);
    const halves = { ...dilated, weightSpecs: [{ ...first, dtype: "float16" }, ...rest] };
    await expect(convertLayersModel(halves)).rejects.toThrow(/dtype float16/);
  });
});
