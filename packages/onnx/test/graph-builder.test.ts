import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import {
  buildTinyClassifier,
  float,
  IR_VERSION,
  int,
  ints,
  OnnxGraphBuilder,
  OPSET,
  onnx,
  str,
} from "../src/index";

function maxAbsDiff(a: readonly number[], b: readonly number[]): number {
  expect(a.length).toBe(b.length);
  return Math.max(...a.map((v, i) => Math.abs(v - (b[i] ?? Number.NaN))));
}

/** input [batch, 2, 3, 3] -> Conv 1x1 (2->1 channels) -> Reshape [batch, 9] via an int64 shape initializer. */
function convGraph(): OnnxGraphBuilder {
  const g = new OnnxGraphBuilder({ graphName: "conv" });
  g.addInput("x", ["batch", 2, 3, 3]);
  g.addInitializer("w", new Float32Array([2, -1]), [1, 2, 1, 1]);
  g.addInitializer("b", new Float32Array([0.5]), [1]);
  g.addInt64Initializer("shape", [-1, 9], [2]);
  g.addNode("Conv", ["x", "w", "b"], ["y"], { kernel_shape: ints([1, 1]), pads: ints([0, 0, 0, 0]) });
  g.addNode("Reshape", ["y", "shape"], ["flat"]);
  g.addOutput("flat", ["batch", 9]);
  return g;
}

describe("OnnxGraphBuilder", () => {
  it("round-trips nodes, attributes, initializers and symbolic dims through the protobuf", () => {
    const g = convGraph();
    g.addNode("LeakyRelu", ["flat"], ["leaky"], { alpha: float(0.25) }, "leaky_node");
    g.addNode("Pad", ["leaky"], ["padded"], { mode: str("constant") });
    g.addOutput("padded", ["batch", "n"]);
    const read = OnnxGraphBuilder.fromModel(g.toBuffer());
    const model = onnx.ModelProto.decode(g.toBuffer());
    expect(Number(model.irVersion.toString())).toBe(IR_VERSION);
    expect(model.opsetImport.map((o) => [o.domain, Number(o.version?.toString())])).toEqual([["", OPSET]]);
    expect(read.nodes.map((n) => n.opType)).toEqual(["Conv", "Reshape", "LeakyRelu", "Pad"]);
    expect(read.nodes[0]?.attributes).toEqual({
      kernel_shape: { ints: [1, 1] },
      pads: { ints: [0, 0, 0, 0] },
    });
    expect(read.nodes[2]).toMatchObject({ name: "leaky_node", inputs: ["flat"], outputs: ["leaky"] });
    expect(read.nodes[2]?.attributes.alpha).toEqual({ float: 0.25 });
    expect(read.nodes[3]?.attributes.mode).toEqual({ string: "constant" });
    expect(read.initializers).toEqual([
      { name: "w", dims: [1, 2, 1, 1], dataType: 1 },
      { name: "b", dims: [1], dataType: 1 },
      { name: "shape", dims: [2], dataType: 7 },
    ]);
    expect(read.initializer("w")).toEqual(new Float32Array([2, -1]));
    expect(() => read.initializer("shape")).toThrow(/not float32/);
    expect(read.inputs[0]?.dims).toEqual(["batch", 2, 3, 3]);
    expect(read.outputs.map((o) => o.dims)).toEqual([
      ["batch", 9],
      ["batch", "n"],
    ]);
  });

  it("runs in onnxruntime with the expected numbers", async () => {
    const session = await ort.InferenceSession.create(convGraph().toBuffer());
    const x = Float32Array.from({ length: 2 * 2 * 9 }, (_, i) => i / 10);
    const out = await session.run({ x: new ort.Tensor("float32", x, [2, 2, 3, 3]) });
    const flat = Array.from(out.flat?.data as Float32Array);
    const expected = [0, 1].flatMap((n) =>
      Array.from({ length: 9 }, (_, i) => 2 * (x[n * 18 + i] ?? 0) - (x[n * 18 + 9 + i] ?? 0) + 0.5),
    );
    expect(out.flat?.dims).toEqual([2, 9]);
    expect(maxAbsDiff(flat, expected)).toBeLessThan(1e-5);
  });

  it("rejects undefined inputs, redefined tensors, missing outputs and bad dims", () => {
    const g = convGraph();
    expect(() => g.addNode("Relu", ["nope"], ["r"])).toThrow(/undefined tensors: nope/);
    expect(() => g.addNode("Relu", ["x"], ["y"])).toThrow(/already defined/);
    expect(() => g.addInitializer("w2", new Float32Array(3), [2, 2])).toThrow(/hold 4 values but data has 3/);
    expect(() => g.addNode("Relu", ["x"], ["r"], { k: int(1.5) })).toThrow(/not an integer/);
    g.addOutput("never", [1]);
    expect(() => g.toBuffer()).toThrow(/never produced: never/);
    expect(g.uniqueName("x")).toBe("x_1");
  });

  it("extends a read model with a new head and writes it to disk", async () => {
    const base = OnnxGraphBuilder.fromModel(
      buildTinyClassifier({ classes: 3, width: 2, height: 2, seed: 1 }),
    );
    base.removeOutput("logits");
    base.addInitializer("head2.weight", new Float32Array([1, 0, 0, 0, 0, 1]), [2, 3]);
    base.addNode("Relu", ["logits"], ["relu"]);
    base.addNode("Gemm", ["relu", "head2.weight", ""], ["scores"], { transB: int(1) });
    base.addOutput("scores", ["batch", 2]);
    const file = path.join(await mkdtemp(path.join(tmpdir(), "onnx-")), "nested", "head.onnx");
    await base.writeFile(file);

    const session = await ort.InferenceSession.create(await readFile(file));
    expect(session.outputNames).toEqual(["scores"]);
    // Reddish pixels, so class 0 is positive and class 2 negative and the Relu matters.
    const data = Float32Array.from(
      { length: 2 * 3 * 4 },
      (_, i) => [1, 0.2, -0.5][Math.floor(i / 4) % 3] ?? 0,
    );
    const base3 = await ort.InferenceSession.create(
      buildTinyClassifier({ classes: 3, width: 2, height: 2, seed: 1 }),
    );
    const input = { input: new ort.Tensor("float32", data, [2, 3, 2, 2]) };
    const logits = (await base3.run(input)).logits?.data as Float32Array;
    const scores = (await session.run(input)).scores?.data as Float32Array;
    const relu = (v: number | undefined) => Math.max(0, v ?? Number.NaN);
    const expected = [0, 1].flatMap((n) => [relu(logits[n * 3]), relu(logits[n * 3 + 2])]);
    expect(expected[0]).toBeGreaterThan(0.5);
    expect(expected[1]).toBe(0);
    expect(maxAbsDiff(Array.from(scores), expected)).toBeLessThan(1e-6);
  });
});
