import { readFile } from "node:fs/promises";
import { int, OnnxGraphBuilder } from "@garbage/onnx";

export interface AppendHeadOptions {
  /** Name of the new output. */
  outName?: string;
  /** The backbone output that feeds the head; it stops being a graph output. */
  featuresName?: string;
  /**
   * A residual non-linear branch added to the linear logits: logits = linear(f) + second(relu(first(f))).
   * Each layer is row-major [out][in] like `weights`; first.out must equal second.in.
   */
  mlp?: [DenseLayer, DenseLayer];
}

export interface DenseLayer {
  weight: Float32Array;
  bias: Float32Array;
}

/**
 * Appends a linear classifier to a features model: logits = features · weightᵀ + bias, as one Gemm.
 *
 * `weights` is row-major [out][in], i.e. weights[o * in + i] (PyTorch nn.Linear layout; a Keras Dense kernel
 * [in][out] must be transposed first). `bias` has `out` values, so out = bias.length and in is read from the
 * model's features output, which must have a fixed size.
 */
export async function appendLinearHead(
  featuresModel: Buffer | Uint8Array | string,
  weights: Float32Array,
  bias: Float32Array,
  options: AppendHeadOptions = {},
): Promise<Buffer> {
  const { outName = "logits", featuresName = "features" } = options;
  const bytes = typeof featuresModel === "string" ? await readFile(featuresModel) : featuresModel;
  const g = OnnxGraphBuilder.fromModel(bytes);
  const features = g.removeOutput(featuresName);
  const [batch, size] = features.dims;
  if (features.dims.length !== 2 || typeof size !== "number" || batch === undefined) {
    throw new Error(`${featuresName} has dims [${features.dims}]; expected [batch, n] with a fixed n`);
  }
  const classes = bias.length;
  if (classes === 0 || weights.length !== classes * size) {
    throw new Error(
      `head weights hold ${weights.length} values; expected ${classes} x ${size} (bias.length x features)`,
    );
  }
  const w = g.addInitializer(g.uniqueName("head.weight"), weights, [classes, size]);
  const b = g.addInitializer(g.uniqueName("head.bias"), bias, [classes]);
  const linearOut = options.mlp ? g.uniqueName("head_linear") : outName;
  g.addNode("Gemm", [featuresName, w, b], [linearOut], { transB: int(1) }, g.uniqueName("head"));
  if (options.mlp) {
    const [first, second] = options.mlp;
    const hidden = first.bias.length;
    if (first.weight.length !== hidden * size || second.bias.length !== classes)
      throw new Error(`mlp layers must be [hidden x ${size}] then [${classes} x hidden]`);
    if (second.weight.length !== classes * hidden)
      throw new Error(
        `mlp second layer holds ${second.weight.length} values; expected ${classes} x ${hidden}`,
      );
    const w1 = g.addInitializer(g.uniqueName("head.mlp1.weight"), first.weight, [hidden, size]);
    const b1 = g.addInitializer(g.uniqueName("head.mlp1.bias"), first.bias, [hidden]);
    const w2 = g.addInitializer(g.uniqueName("head.mlp2.weight"), second.weight, [classes, hidden]);
    const b2 = g.addInitializer(g.uniqueName("head.mlp2.bias"), second.bias, [classes]);
    const [h] = g.addNode("Gemm", [featuresName, w1, b1], [g.uniqueName("head_mlp1")], { transB: int(1) });
    const [r] = g.addNode("Relu", [h as string], [g.uniqueName("head_mlp1_relu")]);
    const [m] = g.addNode("Gemm", [r as string, w2, b2], [g.uniqueName("head_mlp2")], { transB: int(1) });
    g.addNode("Add", [linearOut, m as string], [outName]);
  }
  g.addOutput(outName, [batch, classes]);
  return g.toBuffer();
}
