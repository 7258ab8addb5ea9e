import { type Dim, OnnxGraphBuilder } from "@garbage/onnx";
import type { ConvertContext, TensorRef } from "./convert-context";
import { LAYER_CONVERTERS } from "./layer-converters";
import {
  type KerasLayer,
  type LayersModelArtifacts,
  loadArtifactsFromDir,
  type ParsedLayersModel,
  parseLayersModel,
  type WeightTensor,
} from "./tfjs-model";

export interface ConvertOptions {
  /** Layer whose output becomes the graph output; defaults to the model's only output layer. */
  outputLayer?: string;
  /** Name of the ONNX graph output. */
  outputName?: string;
  /** Leave out the output layer's activation, e.g. to expose logits instead of a final softmax. */
  dropOutputActivation?: boolean;
  inputName?: string;
  /** Keep the Keras input's fixed height/width instead of symbolic "height"/"width" dims. */
  fixedSpatial?: boolean;
}

export type LayersModelSource = string | LayersModelArtifacts | ParsedLayersModel;

async function parseSource(source: LayersModelSource): Promise<ParsedLayersModel> {
  if (typeof source === "string") return parseLayersModel(await loadArtifactsFromDir(source));
  return "layers" in source ? source : parseLayersModel(source);
}

/** The layers the output depends on, so unused branches (like a classifier head) need no converter. */
function ancestors(byName: Map<string, KerasLayer>, output: string): Set<string> {
  const needed = new Set<string>();
  const stack = [output];
  for (let name = stack.pop(); name !== undefined; name = stack.pop()) {
    if (needed.has(name)) continue;
    const layer = byName.get(name);
    if (!layer) throw new Error(`unknown layer ${name}`);
    needed.add(name);
    stack.push(...layer.inbound);
  }
  return needed;
}

function addGraphInput(g: OnnxGraphBuilder, layer: KerasLayer, options: ConvertOptions): TensorRef {
  const shape = layer.config.batch_input_shape;
  const name = options.inputName ?? "input";
  if (!Array.isArray(shape)) throw new Error(`input layer ${layer.name} has no batch_input_shape`);
  if (shape.length === 4) {
    // Keras images are NHWC; the ONNX graph is NCHW throughout, so only the declared input layout changes.
    const [, height, width, channels] = shape as (number | null)[];
    if (typeof channels !== "number") throw new Error(`input layer ${layer.name} has no fixed channel count`);
    const spatial: Dim[] = options.fixedSpatial
      ? [height ?? "height", width ?? "width"]
      : ["height", "width"];
    g.addInput(name, ["batch", channels, ...spatial]);
    return { name, rank: 4, channels };
  }
  const features = shape[1];
  if (shape.length !== 2 || typeof features !== "number") {
    throw new Error(
      `input layer ${layer.name} has shape [${shape}]; only [batch, H, W, C] and [batch, F] are supported`,
    );
  }
  g.addInput(name, ["batch", features]);
  return { name, rank: 2, channels: features };
}

/** Converts a parsed Keras functional/sequential model into an ONNX graph (NCHW, opset 13). */
export function tfjsToOnnx(model: ParsedLayersModel, options: ConvertOptions = {}): OnnxGraphBuilder {
  if (model.inputs.length !== 1) throw new Error(`expected one input layer, found ${model.inputs.length}`);
  const outputLayer = options.outputLayer ?? (model.outputs.length === 1 ? model.outputs[0] : undefined);
  if (!outputLayer) throw new Error(`model has ${model.outputs.length} outputs; choose one with outputLayer`);
  const outputName = options.outputName ?? "output";
  const byName = new Map(model.layers.map((l) => [l.name, l]));
  const needed = ancestors(byName, outputLayer);
  const consumers = new Map<string, KerasLayer[]>();
  for (const layer of model.layers) {
    if (!needed.has(layer.name)) continue;
    for (const src of layer.inbound) consumers.set(src, [...(consumers.get(src) ?? []), layer]);
  }

  const g = new OnnxGraphBuilder({
    graphName: model.name,
    docString: `converted from TF.js layers model ${model.name}`,
  });
  const ctx: ConvertContext = {
    graph: g,
    foldedBatchNorms: new Set(),
    dropOutputActivation: options.dropOutputActivation ?? false,
    isOutput: (layer) => layer.name === outputLayer,
    // The graph output's name is kept free for the output layer even if another layer happens to carry it.
    outName: (layer) =>
      layer.name === outputLayer
        ? outputName
        : g.uniqueName(layer.name === outputName ? `${outputName}_` : layer.name),
    consumers: (layer) => consumers.get(layer.name) ?? [],
    weight: (layer, role) => {
      const weight = ctx.optionalWeight(layer, role);
      if (!weight) throw new Error(`layer ${layer.name} (${layer.className}) has no ${role} weight`);
      return weight;
    },
    optionalWeight: (layer, role): WeightTensor | undefined => model.weights.get(`${layer.name}/${role}`),
  };

  const tensors = new Map<string, TensorRef>();
  for (const layer of model.layers) {
    if (!needed.has(layer.name)) continue;
    if (layer.className === "InputLayer") {
      if (layer.name !== model.inputs[0]) throw new Error(`unexpected second input layer ${layer.name}`);
      tensors.set(layer.name, addGraphInput(g, layer, options));
      continue;
    }
    const convert = LAYER_CONVERTERS[layer.className];
    if (!convert) {
      const known = ["InputLayer", ...Object.keys(LAYER_CONVERTERS)].join(", ");
      throw new Error(`layer ${layer.name}: unsupported layer type ${layer.className} (supported: ${known})`);
    }
    const inputs = layer.inbound.map((src) => {
      const ref = tensors.get(src);
      if (!ref) throw new Error(`layer ${layer.name} reads ${src} before it is defined`);
      return ref;
    });
    tensors.set(layer.name, convert(ctx, layer, inputs));
  }

  const out = tensors.get(outputLayer);
  if (!out) throw new Error(`output layer ${outputLayer} was not converted`);
  // Layers that emit no node (a linear Activation, a folded BatchNorm) leave the output under another name.
  if (out.name !== outputName) g.addNode("Identity", [out.name], [outputName]);
  g.addOutput(
    outputName,
    out.rank === 2 ? ["batch", out.channels] : ["batch", out.channels, "out_height", "out_width"],
  );
  return g;
}

/** Converts from a model directory (model.json + shards), in-memory artifacts, or an already parsed model. */
export async function convertLayersModel(
  source: LayersModelSource,
  options: ConvertOptions = {},
): Promise<Buffer> {
  return tfjsToOnnx(await parseSource(source), options).toBuffer();
}

export { parseSource as loadLayersModelSource };
