import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";
import type { LayersModelArtifacts } from "../src/index";

export { tf, tfl };

const apply = (layer: tfl.layers.Layer, x: tfl.SymbolicTensor | tfl.SymbolicTensor[]) =>
  layer.apply(x) as tfl.SymbolicTensor;

/**
 * A ResNet-shaped toy with every supported layer type and the awkward cases: asymmetric zero padding, SAME
 * with stride 2, a conv with its own relu (not foldable), a batch norm without beta, one after an Add (not
 * foldable), SAME max pooling and a bias-free conv. Spatial dims are left open so one model serves any size.
 */
export function buildToyResnet(): tfl.LayersModel {
  const L = tfl.layers;
  const input = tfl.input({ shape: [null, null, 3], name: "image" });
  const padded = apply(
    L.zeroPadding2d({
      padding: [
        [1, 2],
        [0, 1],
      ],
      name: "pad",
    }),
    input,
  );
  const c1 = apply(L.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: "same", name: "c1" }), padded);
  const a = apply(
    L.activation({ activation: "relu", name: "relu1" }),
    apply(L.batchNormalization({ name: "bn1" }), c1),
  );
  const c2 = apply(L.conv2d({ filters: 8, kernelSize: [2, 3], padding: "same", name: "c2" }), a);
  const b = apply(L.batchNormalization({ center: false, epsilon: 1e-5, name: "bn2" }), c2);
  const s = apply(
    L.conv2d({ filters: 8, kernelSize: 1, padding: "valid", activation: "relu", name: "c3" }),
    a,
  );
  const sum = apply(L.add({ name: "add" }), [b, s]);
  const r = apply(
    L.activation({ activation: "relu", name: "relu2" }),
    apply(L.batchNormalization({ name: "bn_add" }), sum),
  );
  const pooled = apply(L.maxPooling2d({ poolSize: 3, strides: 2, padding: "same", name: "pool" }), r);
  const c4 = apply(L.conv2d({ filters: 6, kernelSize: 2, strides: 2, useBias: false, name: "c4" }), pooled);
  const bn4 = apply(L.batchNormalization({ scale: false, name: "bn4" }), c4);
  const gap = apply(L.globalAveragePooling2d({ name: "gap" }), bn4);
  const dense = apply(L.dense({ units: 5, activation: "softmax", name: "fc" }), gap);
  return randomise(tfl.model({ inputs: input, outputs: dense, name: "toy" }));
}

export function buildToySequential(): tfl.Sequential {
  const L = tfl.layers;
  const model = tfl.sequential({ name: "seq" });
  model.add(
    L.conv2d({ inputShape: [6, 7, 2], filters: 4, kernelSize: 3, strides: 2, padding: "same", name: "sc" }),
  );
  model.add(L.batchNormalization({ name: "sbn" }));
  model.add(L.activation({ activation: "tanh", name: "stanh" }));
  model.add(L.globalAveragePooling2d({ name: "sgap" }));
  model.add(L.dense({ units: 3, activation: "sigmoid", name: "sfc" }));
  return randomise(model);
}

/** Fresh layers start with identity batch norms, which would hide folding mistakes; give every weight a value. */
function randomise<M extends tfl.LayersModel>(model: M): M {
  let seed = 1;
  model.setWeights(
    model.weights.map((w) => {
      seed += 1;
      const shape = w.shape as number[];
      const positive = /moving_variance|gamma/.test(w.originalName);
      return positive
        ? tf.randomUniform(shape, 0.5, 1.5, "float32", seed)
        : tf.randomNormal(shape, 0, 0.4, "float32", seed);
    }),
  );
  return model;
}

export async function artifactsOf(model: tfl.LayersModel): Promise<LayersModelArtifacts> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
    }),
  );
  if (!saved?.weightSpecs || !saved.weightData) throw new Error("model.save handed over no weights");
  return { modelTopology: saved.modelTopology, weightSpecs: saved.weightSpecs, weightData: saved.weightData };
}

/** Deterministic N(0,1)-ish input in NHWC, with its NCHW transpose. */
export function randomImages(
  n: number,
  h: number,
  w: number,
  seed: number,
): { nhwc: tf.Tensor4D; nchw: Float32Array } {
  const nhwc = tf.randomNormal([n, h, w, 3], 0, 1, "float32", seed) as tf.Tensor4D;
  const nchw = tf.transpose(nhwc, [0, 3, 1, 2]).dataSync() as Float32Array;
  return { nhwc, nchw };
}
