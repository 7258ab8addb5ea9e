import { type Attribute, int, ints, type OnnxGraphBuilder, str } from "@garbage/onnx";
import type { BatchNormParams } from "./kernels";
import type { KerasLayer, WeightTensor } from "./tfjs-model";

/** A converted tensor: NCHW when rank 4, [batch, features] when rank 2. */
export interface TensorRef {
  name: string;
  rank: 2 | 4;
  channels: number;
}

export interface ConvertContext {
  graph: OnnxGraphBuilder;
  /** Batch norms already folded into their conv; they alias the conv's output. */
  foldedBatchNorms: Set<string>;
  dropOutputActivation: boolean;
  isOutput(layer: KerasLayer): boolean;
  /** Name for the tensor a layer finally produces (the graph output's name for the output layer). */
  outName(layer: KerasLayer): string;
  consumers(layer: KerasLayer): KerasLayer[];
  weight(layer: KerasLayer, role: string): WeightTensor;
  optionalWeight(layer: KerasLayer, role: string): WeightTensor | undefined;
}

export type LayerConverter = (ctx: ConvertContext, layer: KerasLayer, inputs: TensorRef[]) => TensorRef;

export function refuse(layer: KerasLayer, why: string): never {
  throw new Error(`layer ${layer.name} (${layer.className}): ${why}`);
}

export function pair(layer: KerasLayer, key: string, fallback?: [number, number]): [number, number] {
  const value = layer.config[key] ?? fallback;
  if (typeof value === "number") return [value, value];
  if (Array.isArray(value) && value.length === 2 && value.every(Number.isInteger))
    return [value[0], value[1]];
  return refuse(layer, `cannot read ${key}=${JSON.stringify(value)}`);
}

export function single(layer: KerasLayer, inputs: TensorRef[], rank: 2 | 4): TensorRef {
  const [x] = inputs;
  if (inputs.length !== 1 || !x) return refuse(layer, `expects one input, got ${inputs.length}`);
  if (x.rank !== rank) return refuse(layer, `expects a rank-${rank} input, got rank ${x.rank}`);
  if ((layer.config.data_format ?? "channels_last") !== "channels_last")
    refuse(layer, "only channels_last is supported");
  return x;
}

export const ACTIVATIONS: Record<string, string | null> = {
  linear: null,
  relu: "Relu",
  sigmoid: "Sigmoid",
  tanh: "Tanh",
  softmax: "Softmax",
};

export function activationOp(layer: KerasLayer, name: unknown): string | null {
  const op = ACTIVATIONS[String(name ?? "linear")];
  return op === undefined ? refuse(layer, `unsupported activation ${String(name)}`) : op;
}

export function addActivation(
  ctx: ConvertContext,
  op: string,
  input: string,
  out: string,
  nodeName: string,
): void {
  // Keras activations act on the last (channel) axis, which is axis 1 in both NCHW and [batch, features].
  ctx.graph.addNode(op, [input], [out], op === "Softmax" ? { axis: int(1) } : {}, nodeName);
}

/** Emits a layer's main node via `emit`, followed by its activation unless linear or dropped at the output. */
export function withActivation(ctx: ConvertContext, layer: KerasLayer, emit: (out: string) => void): string {
  const op = activationOp(layer, layer.config.activation);
  const out = ctx.outName(layer);
  if (op === null || (ctx.isOutput(layer) && ctx.dropOutputActivation)) {
    emit(out);
    return out;
  }
  const pre = ctx.graph.uniqueName(`${layer.name}/pre_activation`);
  emit(pre);
  addActivation(ctx, op, pre, out, `${layer.name}/${op}`);
  return out;
}

/** Keras SAME puts any odd padding at the bottom/right, exactly ONNX's SAME_UPPER. */
export function paddingAttrs(
  layer: KerasLayer,
  kernel: [number, number],
  strides: [number, number],
): Record<string, Attribute> {
  const padding = layer.config.padding;
  if (padding === "valid") return { pads: ints([0, 0, 0, 0]) };
  if (padding !== "same") return refuse(layer, `unsupported padding ${String(padding)}`);
  if (strides[0] === 1 && strides[1] === 1) {
    // With stride 1 the amount is input-size independent, so it can be explicit.
    const begin = kernel.map((k) => Math.floor((k - 1) / 2));
    return { pads: ints([...begin, ...kernel.map((k, i) => k - 1 - (begin[i] ?? 0))]) };
  }
  // With stride > 1 it depends on the (symbolic) input size, so the runtime must work it out.
  return { auto_pad: str("SAME_UPPER") };
}

export function batchNormParams(ctx: ConvertContext, layer: KerasLayer, channels: number): BatchNormParams {
  const axis = layer.config.axis;
  const axes = Array.isArray(axis) ? axis : [axis ?? -1];
  if (axes.length !== 1 || !(axes[0] === -1 || axes[0] === 3 || axes[0] === 1)) {
    refuse(layer, `normalises axis ${JSON.stringify(axis)}; only the channel axis is supported`);
  }
  const get = (role: string, enabled: unknown, fill: number): Float32Array =>
    enabled === false ? new Float32Array(channels).fill(fill) : ctx.weight(layer, role).data;
  return {
    gamma: get("gamma", layer.config.scale, 1),
    beta: get("beta", layer.config.center, 0),
    mean: ctx.weight(layer, "moving_mean").data,
    variance: ctx.weight(layer, "moving_variance").data,
    epsilon: Number(layer.config.epsilon ?? 1e-3),
  };
}
