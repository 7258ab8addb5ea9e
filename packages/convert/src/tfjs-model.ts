import { readFile } from "node:fs/promises";
import path from "node:path";

/** One entry of a TF.js weights manifest. */
export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: unknown;
}

/**
 * A TF.js layers model held in memory, as `model.save(tf.io.withSaveHandler(...))` hands it over: the Keras
 * topology, the weight specs in storage order, and their concatenated bytes.
 */
export interface LayersModelArtifacts {
  modelTopology: unknown;
  weightSpecs: WeightSpec[];
  weightData: ArrayBuffer | ArrayBuffer[];
}

export interface KerasLayer {
  name: string;
  className: string;
  config: Record<string, unknown>;
  /** Names of the layers feeding this one, in argument order. */
  inbound: string[];
}

export interface WeightTensor {
  shape: number[];
  data: Float32Array;
}

export interface ParsedLayersModel {
  name: string;
  /** In topological order, as Keras serialises them. */
  layers: KerasLayer[];
  inputs: string[];
  outputs: string[];
  /** Keyed "<layer>/<role>", e.g. "conv1/kernel", "bn_conv1/moving_mean". */
  weights: Map<string, WeightTensor>;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

function fail(message: string): never {
  throw new Error(`TF.js layers model: ${message}`);
}

/** Reads model.json and its weight shards (in manifest order) from a directory. */
export async function loadArtifactsFromDir(dir: string): Promise<LayersModelArtifacts> {
  const modelJson: unknown = JSON.parse(await readFile(path.join(dir, "model.json"), "utf8"));
  if (!isObject(modelJson) || !Array.isArray(modelJson.weightsManifest))
    fail(`${dir}/model.json has no weightsManifest`);
  const weightSpecs: WeightSpec[] = [];
  const shards: ArrayBuffer[] = [];
  for (const group of modelJson.weightsManifest as { paths: string[]; weights: WeightSpec[] }[]) {
    weightSpecs.push(...group.weights);
    for (const shard of group.paths) {
      const bytes = await readFile(path.join(dir, shard));
      shards.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
    }
  }
  return { modelTopology: modelJson.modelTopology, weightSpecs, weightData: shards };
}

function concatBuffers(data: ArrayBuffer | ArrayBuffer[]): Uint8Array {
  if (!Array.isArray(data)) return new Uint8Array(data);
  const out = new Uint8Array(data.reduce((n, b) => n + b.byteLength, 0));
  let offset = 0;
  for (const buffer of data) {
    out.set(new Uint8Array(buffer), offset);
    offset += buffer.byteLength;
  }
  return out;
}

/** Weight names carry the layer scope and sometimes a uniquifying suffix: "res2a/kernel:0", "dense_Dense1/bias_1". */
function weightKey(name: string): string {
  const parts = name.split("/");
  const role = (parts.at(-1) ?? "").replace(/:\d+$/, "").replace(/_\d+$/, "");
  return `${parts.at(-2) ?? ""}/${role}`;
}

function parseWeights(specs: WeightSpec[], data: ArrayBuffer | ArrayBuffer[]): Map<string, WeightTensor> {
  const bytes = concatBuffers(data);
  const weights = new Map<string, WeightTensor>();
  let offset = 0;
  for (const spec of specs) {
    if (spec.quantization !== undefined)
      fail(`weight ${spec.name} is quantised; only float32 weights are supported`);
    if (spec.dtype !== "float32")
      fail(`weight ${spec.name} has dtype ${spec.dtype}; only float32 is supported`);
    const size = spec.shape.reduce((a, b) => a * b, 1);
    if (offset + size * 4 > bytes.length)
      fail(`weight data ends before ${spec.name} (${bytes.length} bytes)`);
    // Copied so each tensor is 4-byte aligned whatever its offset in the shard stream.
    const data = new Float32Array(bytes.slice(offset, offset + size * 4).buffer);
    offset += size * 4;
    const key = weightKey(spec.name);
    if (weights.has(key)) fail(`two weights map to ${key} (latest: ${spec.name})`);
    weights.set(key, { shape: spec.shape, data });
  }
  if (offset !== bytes.length) fail(`weight specs cover ${offset} bytes but weight data has ${bytes.length}`);
  return weights;
}

/** [["input_1", 0, 0, {}], ...] -> ["input_1", ...]; shared layers and multi-output layers are refused. */
function parseInbound(layer: Json, name: string): string[] {
  const nodes = (layer.inbound_nodes ?? []) as unknown[];
  if (nodes.length > 1)
    fail(`layer ${name} is called ${nodes.length} times; shared layers are not supported`);
  const first = nodes[0];
  if (first === undefined) return [];
  if (!Array.isArray(first)) fail(`layer ${name} uses an inbound_nodes format this converter does not read`);
  return first.map((ref: unknown) => {
    if (!Array.isArray(ref) || typeof ref[0] !== "string")
      fail(`layer ${name} has an unreadable inbound node`);
    if (ref[1] !== 0 || ref[2] !== 0) fail(`layer ${name} reads a secondary node/output of ${ref[0]}`);
    return ref[0];
  });
}

function endpoints(list: unknown, what: string): string[] {
  if (!Array.isArray(list)) fail(`model has no ${what}`);
  return list.map((ref: unknown) => (Array.isArray(ref) && typeof ref[0] === "string" ? ref[0] : fail(what)));
}

/** Sequential models list layers without wiring: each one feeds the next, after an implied input layer. */
function sequentialLayers(
  name: string,
  raw: Json[],
): { layers: KerasLayer[]; inputs: string[]; outputs: string[] } {
  const firstConfig = raw[0]?.config;
  const shape = isObject(firstConfig) ? firstConfig.batch_input_shape : undefined;
  if (!Array.isArray(shape))
    fail(`sequential model ${name} does not declare batch_input_shape on its first layer`);
  const inputName = `${name}_input`;
  const layers: KerasLayer[] = [
    { name: inputName, className: "InputLayer", config: { batch_input_shape: shape }, inbound: [] },
  ];
  for (const layer of raw) {
    const config = (layer.config ?? {}) as Json;
    const previous = layers.at(-1)?.name ?? inputName;
    layers.push({
      name: String(config.name),
      className: String(layer.class_name),
      config,
      inbound: [previous],
    });
  }
  return { layers, inputs: [inputName], outputs: [layers.at(-1)?.name ?? inputName] };
}

export function parseLayersModel(artifacts: LayersModelArtifacts): ParsedLayersModel {
  const topology = artifacts.modelTopology;
  if (!isObject(topology)) fail("modelTopology is missing");
  // model.json from the Python converter wraps the Keras config in model_config; tfjs model.save() does not.
  const modelConfig = isObject(topology.model_config) ? topology.model_config : topology;
  const className = modelConfig.class_name;
  const config = modelConfig.config;
  if (!isObject(config) || !Array.isArray(config.layers))
    fail(`unsupported model config (class ${className})`);
  const name = String(config.name ?? "model");
  const rawLayers = config.layers as Json[];
  const weights = parseWeights(artifacts.weightSpecs, artifacts.weightData);
  if (className === "Sequential") return { name, ...sequentialLayers(name, rawLayers), weights };
  if (className !== "Model" && className !== "Functional")
    fail(`unsupported model class ${String(className)}`);
  const layers = rawLayers.map((layer): KerasLayer => {
    const layerName = String(layer.name);
    return {
      name: layerName,
      className: String(layer.class_name),
      config: (layer.config ?? {}) as Json,
      inbound: parseInbound(layer, layerName),
    };
  });
  return {
    name,
    layers,
    inputs: endpoints(config.input_layers, "input_layers"),
    outputs: endpoints(config.output_layers, "output_layers"),
    weights,
  };
}
