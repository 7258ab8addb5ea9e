import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { buildTinyClassifier, OnnxGraphBuilder, tinyClassifierWeights } from "../src/index";

const W = 5;
const H = 4;
const CLASSES = 6;

function solidImages(colours: readonly (readonly [number, number, number])[]): Float32Array {
  const plane = W * H;
  const data = new Float32Array(colours.length * 3 * plane);
  colours.forEach((rgb, n) => {
    for (let c = 0; c < 3; c++) data.fill(rgb[c] ?? 0, (n * 3 + c) * plane, (n * 3 + c + 1) * plane);
  });
  return data;
}

function noiseImages(batch: number): Float32Array {
  // A fixed LCG rather than Math.random so a failure reproduces.
  let s = 12345;
  return Float32Array.from({ length: batch * 3 * H * W }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  });
}

/** The model, by hand: mean of each channel plane, then weight · means + bias. */
function expectedLogits(
  data: Float32Array,
  batch: number,
  weight: Float32Array,
  bias: Float32Array,
): number[][] {
  const plane = H * W;
  return Array.from({ length: batch }, (_, n) => {
    const means = [0, 1, 2].map((c) => {
      let sum = 0;
      for (let i = 0; i < plane; i++) sum += data[(n * 3 + c) * plane + i] ?? Number.NaN;
      return sum / plane;
    });
    return Array.from({ length: CLASSES }, (_, k) => {
      let z = bias[k] ?? Number.NaN;
      for (let c = 0; c < 3; c++) z += (weight[k * 3 + c] ?? Number.NaN) * (means[c] ?? Number.NaN);
      return z;
    });
  });
}

async function run(model: Buffer, data: Float32Array, batch: number): Promise<ort.Tensor> {
  const session = await ort.InferenceSession.create(model);
  const out = await session.run({ input: new ort.Tensor("float32", data, [batch, 3, H, W]) });
  const logits = out.logits;
  if (!logits) throw new Error("model has no logits output");
  return logits;
}

const argmax = (row: ArrayLike<number>): number => {
  let best = 0;
  for (let i = 1; i < row.length; i++) if ((row[i] ?? -Infinity) > (row[best] ?? -Infinity)) best = i;
  return best;
};

describe("buildTinyClassifier", () => {
  const model = buildTinyClassifier({ classes: CLASSES, width: W, height: H, seed: 7 });
  const read = OnnxGraphBuilder.fromModel(model);

  it("declares a dynamic batch and stores the seeded weights", () => {
    expect(read.inputs).toEqual([{ name: "input", elemType: "float32", dims: ["batch", 3, H, W] }]);
    expect(read.outputs).toEqual([{ name: "logits", elemType: "float32", dims: ["batch", CLASSES] }]);
    const { weight, bias } = tinyClassifierWeights(CLASSES, 7);
    expect(read.initializer("head.weight")).toEqual(weight);
    expect(read.initializer("head.bias")).toEqual(bias);
  });

  for (const batch of [1, 5]) {
    it(`matches a hand computation with batch ${batch}`, async () => {
      const data = noiseImages(batch);
      const logits = await run(model, data, batch);
      expect(logits.dims).toEqual([batch, CLASSES]);
      const expected = expectedLogits(
        data,
        batch,
        read.initializer("head.weight"),
        read.initializer("head.bias"),
      );
      const got = Array.from(logits.data as Float32Array);
      const diffs = expected.flat().map((value, i) => Math.abs((got[i] ?? Number.NaN) - value));
      expect(got).toHaveLength(batch * CLASSES);
      expect(Math.max(...diffs)).toBeLessThan(1e-5);
    });
  }

  it("gives red, green and blue images different labels", async () => {
    const data = solidImages([
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ]);
    const logits = (await run(model, data, 3)).data as Float32Array;
    const labels = [0, 1, 2].map((n) => argmax(logits.subarray(n * CLASSES, (n + 1) * CLASSES)));
    // Hue directions 0°, 120°, 240° are classes 0, 2, 4 of six.
    expect(labels).toEqual([0, 2, 4]);
  });

  it("is deterministic in the seed", () => {
    const again = buildTinyClassifier({ classes: CLASSES, width: W, height: H, seed: 7 });
    const other = buildTinyClassifier({ classes: CLASSES, width: W, height: H, seed: 8 });
    expect(again.equals(model)).toBe(true);
    expect(other.equals(model)).toBe(false);
  });

  it("rejects fewer than two classes", () => {
    expect(() => buildTinyClassifier({ classes: 1, width: W, height: H })).toThrow(/classes/);
  });
});
