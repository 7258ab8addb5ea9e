import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { OnnxGraphBuilder } from "@garbage/onnx";
import * as ort from "onnxruntime-node";
import { beforeAll, describe, expect, it } from "vitest";
import { appendLinearHead, convertLayersModel } from "../src/index";
import { artifactsOf, buildToyResnet, randomImages, tf } from "./tiny-keras";

const FEATURES = 6;
const CLASSES = 4;

async function run(model: Uint8Array, input: Float32Array, output: string): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model);
  const out = await session.run({ input: new ort.Tensor("float32", input, [2, 3, 9, 9]) });
  const tensor = out[output];
  if (!tensor) throw new Error(`no output ${output}; got ${Object.keys(out).join(", ")}`);
  return tensor.data as Float32Array;
}

describe("appendLinearHead", () => {
  let featuresModel: Buffer;
  // Row-major [out][in]: class o reads weight[o * FEATURES + i]; distinct values expose any transposition.
  const weights = Float32Array.from({ length: CLASSES * FEATURES }, (_, j) => Math.sin(j + 1));
  const bias = Float32Array.from({ length: CLASSES }, (_, o) => o * 0.1 - 0.15);

  beforeAll(async () => {
    await tf.setBackend("cpu");
    const artifacts = await artifactsOf(buildToyResnet());
    featuresModel = await convertLayersModel(artifacts, { outputLayer: "gap", outputName: "features" });
  });

  it("computes features · weightᵀ + bias on top of the backbone, from a buffer or a file", async () => {
    const { nchw } = randomImages(2, 9, 9, 3);
    const features = await run(featuresModel, nchw, "features");
    const expected = [0, 1].flatMap((n) =>
      Array.from({ length: CLASSES }, (_, o) => {
        let z = bias[o] ?? 0;
        for (let i = 0; i < FEATURES; i++)
          z += (weights[o * FEATURES + i] ?? 0) * (features[n * FEATURES + i] ?? 0);
        return z;
      }),
    );
    const file = path.join(await mkdtemp(path.join(tmpdir(), "head-")), "features.onnx");
    await writeFile(file, featuresModel);
    for (const source of [featuresModel, file]) {
      const withHead = await appendLinearHead(source, weights, bias);
      const logits = await run(withHead, nchw, "logits");
      const diff = Math.max(...Array.from(logits, (v, i) => Math.abs(v - (expected[i] ?? Number.NaN))));
      expect(logits).toHaveLength(2 * CLASSES);
      expect(diff).toBeLessThan(1e-5);
      const graph = OnnxGraphBuilder.fromModel(withHead);
      expect(graph.outputs).toEqual([{ name: "logits", elemType: "float32", dims: ["batch", CLASSES] }]);
      expect(graph.inputs[0]?.dims).toEqual(["batch", 3, "height", "width"]);
    }
  });

  it("honours a custom output name", async () => {
    const withHead = await appendLinearHead(featuresModel, weights, bias, { outName: "scores" });
    expect(OnnxGraphBuilder.fromModel(withHead).outputs.map((o) => o.name)).toEqual(["scores"]);
  });

  it("rejects weights that do not fit the features, and models without a features output", async () => {
    await expect(appendLinearHead(featuresModel, weights.subarray(1), bias)).rejects.toThrow(
      /expected 4 x 6/,
    );
    await expect(appendLinearHead(featuresModel, weights, new Float32Array(0))).rejects.toThrow(
      /expected 0 x 6/,
    );
    await expect(appendLinearHead(featuresModel, weights, bias, { featuresName: "nope" })).rejects.toThrow(
      /nope is not a graph output/,
    );
  });

  it("adds a residual ReLU branch: logits = linear(f) + mlp2(relu(mlp1(f)))", async () => {
    const hidden = 5;
    const first = {
      weight: Float32Array.from({ length: hidden * FEATURES }, (_, j) => Math.cos(j * 0.7)),
      bias: Float32Array.from({ length: hidden }, (_, h) => (h - 2) * 0.3),
    };
    const second = {
      weight: Float32Array.from({ length: CLASSES * hidden }, (_, j) => Math.sin(j * 1.3)),
      bias: Float32Array.from({ length: CLASSES }, (_, o) => -o * 0.05),
    };
    const { nchw } = randomImages(2, 9, 9, 3);
    const f = await run(featuresModel, nchw, "features");
    const dense = (x: number[], w: Float32Array, b: Float32Array) =>
      Array.from(b, (bo, o) => x.reduce((z, v, i) => z + (w[o * x.length + i] ?? 0) * v, bo));
    const expected = [0, 1].flatMap((n) => {
      const x = Array.from(f.subarray(n * FEATURES, (n + 1) * FEATURES));
      const h = dense(x, first.weight, first.bias).map((v) => Math.max(v, 0));
      const m = dense(h, second.weight, second.bias);
      return dense(x, weights, bias).map((v, o) => v + (m[o] ?? 0));
    });
    const logits = await run(
      await appendLinearHead(featuresModel, weights, bias, { mlp: [first, second] }),
      nchw,
      "logits",
    );
    expect(Math.max(...Array.from(logits, (v, i) => Math.abs(v - (expected[i] ?? Number.NaN))))).toBeLessThan(
      1e-5,
    );
    // Some hidden units must be cut by the ReLU, or the branch would be indistinguishable from a linear one.
    const pre = [0, 1].flatMap((n) =>
      dense(Array.from(f.subarray(n * FEATURES, (n + 1) * FEATURES)), first.weight, first.bias),
    );
    expect(pre.some((v) => v < 0)).toBe(true);
    await expect(
      appendLinearHead(featuresModel, weights, bias, {
        mlp: [first, { ...second, bias: new Float32Array(2) }],
      }),
    ).rejects.toThrow(/mlp layers/);
  });
});
