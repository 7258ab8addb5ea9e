import { readFile } from "node:fs/promises";
import { int, OnnxGraphBuilder } from "@garbage/onnx";

export interface AppendHeadOptions {
  /** Name of the new output. */
  outName?: string;
  /** The backbone output that feeds the head; it stops being a graph output. */
  featuresName?: string;
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
  g.addNode("Gemm", [featuresName, w, b], [outName], { transB: int(1) }, g.uniqueName("head"));
  g.addOutput(outName, [batch, classes]);
  return g.toBuffer();
}
