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
});
