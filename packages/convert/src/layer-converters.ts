import { float, int, ints, str } from "@garbage/onnx";
import {
  activationOp,
  addActivation,
  batchNormParams,
  type LayerConverter,
  paddingAttrs,
  pair,
  refuse,
  single,
  withActivation,
} from "./convert-context";
import { foldBatchNorm, kernelToOihw } from "./kernels";

const conv2d: LayerConverter = (ctx, layer, inputs) => {
  const x = single(layer, inputs, 4);
  const kernelSize = pair(layer, "kernel_size");
  const strides = pair(layer, "strides", [1, 1]);
  const dilation = pair(layer, "dilation_rate", [1, 1]);
  if (dilation[0] !== 1 || dilation[1] !== 1) refuse(layer, "dilated convolutions are not supported");
  if ((layer.config.groups ?? 1) !== 1) refuse(layer, "grouped convolutions are not supported");
  const kernel = ctx.weight(layer, "kernel");
  const [kh, kw, cin, cout = 0] = kernel.shape;
  if (kh !== kernelSize[0] || kw !== kernelSize[1] || cin !== x.channels) {
    refuse(
      layer,
      `kernel shape [${kernel.shape}] does not fit kernel_size ${kernelSize} on ${x.channels} channels`,
    );
  }
  let weight = kernelToOihw(kernel.data, kernel.shape);
  let bias = layer.config.use_bias === false ? new Float32Array(cout) : ctx.weight(layer, "bias").data;
  // A batch norm that is this conv's only reader (and not behind a non-linearity) folds into its weights.
  const [next, ...others] = ctx.consumers(layer);
  const foldable =
    next?.className === "BatchNormalization" &&
    others.length === 0 &&
    !ctx.isOutput(layer) &&
    String(layer.config.activation ?? "linear") === "linear";
  if (foldable) {
    ({ weight, bias } = foldBatchNorm(weight, bias, batchNormParams(ctx, next, cout)));
    ctx.foldedBatchNorms.add(next.name);
  }
  const g = ctx.graph;
  const w = g.addInitializer(g.uniqueName(`${layer.name}/weight`), weight, [
    cout,
    x.channels,
    kh ?? 0,
    kw ?? 0,
  ]);
  const b = g.addInitializer(g.uniqueName(`${layer.name}/bias`), bias, [cout]);
  const attrs = {
    kernel_shape: ints(kernelSize),
    strides: ints(strides),
    ...paddingAttrs(layer, kernelSize, strides),
  };
  const emit = (out: string) => g.addNode("Conv", [x.name, w, b], [out], attrs, layer.name);
  let name: string;
  if (foldable) {
    // The conv now computes the batch norm's output, so it takes the batch norm's tensor name.
    name = ctx.outName(next);
    emit(name);
  } else {
    name = withActivation(ctx, layer, emit);
  }
  return { name, rank: 4, channels: cout };
};

const batchNormalization: LayerConverter = (ctx, layer, inputs) => {
  const [x] = inputs;
  if (inputs.length !== 1 || !x) return refuse(layer, "expects one input");
  if (ctx.foldedBatchNorms.has(layer.name)) return x;
  const p = batchNormParams(ctx, layer, x.channels);
  const g = ctx.graph;
  const names = (["gamma", "beta", "mean", "variance"] as const).map((k) =>
    g.addInitializer(g.uniqueName(`${layer.name}/${k}`), p[k], [x.channels]),
  );
  const out = ctx.outName(layer);
  g.addNode("BatchNormalization", [x.name, ...names], [out], { epsilon: float(p.epsilon) }, layer.name);
  return { ...x, name: out };
};

const dense: LayerConverter = (ctx, layer, inputs) => {
  const x = single(layer, inputs, 2);
  const kernel = ctx.weight(layer, "kernel");
  const [fanIn, units = 0] = kernel.shape;
  if (kernel.shape.length !== 2 || fanIn !== x.channels)
    refuse(layer, `kernel [${kernel.shape}] on ${x.channels} inputs`);
  const g = ctx.graph;
  // Keras Dense kernels are [in, out], which is Gemm's B without a transpose.
  const w = g.addInitializer(g.uniqueName(`${layer.name}/weight`), kernel.data, kernel.shape);
  const bias = layer.config.use_bias === false ? new Float32Array(units) : ctx.weight(layer, "bias").data;
  const b = g.addInitializer(g.uniqueName(`${layer.name}/bias`), bias, [units]);
  const name = withActivation(ctx, layer, (out) => g.addNode("Gemm", [x.name, w, b], [out], {}, layer.name));
  return { name, rank: 2, channels: units };
};

const activation: LayerConverter = (ctx, layer, inputs) => {
  const [x] = inputs;
  if (inputs.length !== 1 || !x) return refuse(layer, "expects one input");
  const op = activationOp(layer, layer.config.activation);
  if (op === null || (ctx.isOutput(layer) && ctx.dropOutputActivation)) return x;
  const out = ctx.outName(layer);
  addActivation(ctx, op, x.name, out, layer.name);
  return { ...x, name: out };
};

const add: LayerConverter = (ctx, layer, inputs) => {
  const [first, ...rest] = inputs;
  if (!first || rest.length === 0) return refuse(layer, "needs at least two inputs");
  if (rest.some((r) => r.rank !== first.rank || r.channels !== first.channels))
    refuse(layer, "input shapes differ");
  let acc = first.name;
  rest.forEach((r, i) => {
    const out = i === rest.length - 1 ? ctx.outName(layer) : ctx.graph.uniqueName(`${layer.name}/partial`);
    ctx.graph.addNode("Add", [acc, r.name], [out], {}, i === 0 ? layer.name : undefined);
    acc = out;
  });
  return { ...first, name: acc };
};

const zeroPadding2d: LayerConverter = (ctx, layer, inputs) => {
  const x = single(layer, inputs, 4);
  const raw = layer.config.padding ?? 1;
  const rows = Array.isArray(raw) ? raw[0] : raw;
  const cols = Array.isArray(raw) ? raw[1] : raw;
  const [top, bottom] = typeof rows === "number" ? [rows, rows] : (rows as number[]);
  const [left, right] = typeof cols === "number" ? [cols, cols] : (cols as number[]);
  const pads = [0, 0, top, left, 0, 0, bottom, right];
  if (!pads.every((p) => Number.isInteger(p) && (p ?? -1) >= 0))
    refuse(layer, `cannot read padding ${JSON.stringify(raw)}`);
  const g = ctx.graph;
  const p = g.addInt64Initializer(g.uniqueName(`${layer.name}/pads`), pads as number[], [8]);
  const out = ctx.outName(layer);
  g.addNode("Pad", [x.name, p], [out], { mode: str("constant") }, layer.name);
  return { ...x, name: out };
};

const maxPooling2d: LayerConverter = (ctx, layer, inputs) => {
  const x = single(layer, inputs, 4);
  const pool = pair(layer, "pool_size", [2, 2]);
  const strides = layer.config.strides == null ? pool : pair(layer, "strides");
  // ONNX MaxPool ignores padded cells like TF does, so SAME maps over unchanged.
  const attrs = { kernel_shape: ints(pool), strides: ints(strides), ...paddingAttrs(layer, pool, strides) };
  const out = ctx.outName(layer);
  ctx.graph.addNode("MaxPool", [x.name], [out], attrs, layer.name);
  return { ...x, name: out };
};

const globalAveragePooling2d: LayerConverter = (ctx, layer, inputs) => {
  const x = single(layer, inputs, 4);
  if (layer.config.keepdims === true) refuse(layer, "keepdims=true is not supported");
  const pooled = ctx.graph.uniqueName(`${layer.name}/pooled`);
  ctx.graph.addNode("GlobalAveragePool", [x.name], [pooled], {}, layer.name);
  const out = ctx.outName(layer);
  ctx.graph.addNode("Flatten", [pooled], [out], { axis: int(1) });
  return { name: out, rank: 2, channels: x.channels };
};

export const LAYER_CONVERTERS: Record<string, LayerConverter | undefined> = {
  Conv2D: conv2d,
  BatchNormalization: batchNormalization,
  Dense: dense,
  Activation: activation,
  Add: add,
  ZeroPadding2D: zeroPadding2d,
  MaxPooling2D: maxPooling2d,
  GlobalAveragePooling2D: globalAveragePooling2d,
};
