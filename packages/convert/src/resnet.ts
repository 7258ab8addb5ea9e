import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import {
  type InputSpec,
  inputSpecSchema,
  type ModelManifest,
  manifestSchema,
  sha256File,
} from "@garbage/inference";
import { RESNET_INTEGRITY, RESNET_PACKAGE, RESNET_VERSION, readImagenetLabels } from "./fetch-resnet";
import type { ParsedLayersModel } from "./tfjs-model";
import { type ConvertOptions, loadLayersModelSource, tfjsToOnnx } from "./tfjs-to-onnx";

export type ResnetOutputMode = "imagenet" | "features";

/**
 * keras.applications ResNet50 expects "caffe" preprocessing: RGB pixels 0..255 flipped to BGR with the ImageNet
 * channel means subtracted and no scaling. The caller does this; the graph takes the result.
 */
export const CAFFE_INPUT: InputSpec = inputSpecSchema.parse({
  name: "input",
  layout: "NCHW",
  width: 224,
  height: 224,
  resize: "stretch",
  channelOrder: "BGR",
  scale: 1,
  mean: [103.939, 116.779, 123.68],
  std: [1, 1, 1],
});

/** A backbone that outputs an embedding rather than class scores, so the classifier manifest does not fit it. */
export interface FeaturesManifest {
  name: string;
  version: string;
  file: string;
  sha256: string;
  input: InputSpec;
  output: { name: string; kind: "features"; size: number };
  source: ResnetSource;
}

interface ResnetSource {
  package: string;
  integrity: string;
  converter: string;
}

const SOURCE: ResnetSource = {
  package: `${RESNET_PACKAGE}@${RESNET_VERSION}`,
  integrity: RESNET_INTEGRITY,
  converter: "@garbage/convert tfjs-to-onnx",
};

/**
 * imagenet: the final Dense's pre-softmax scores as "logits" [batch, 1000].
 * features: the input of that Dense (the global-average-pooled activations) as "features" [batch, 2048].
 */
export function resnetConvertOptions(model: ParsedLayersModel, mode: ResnetOutputMode): ConvertOptions {
  const [outputName] = model.outputs;
  const head = model.layers.find((l) => l.name === outputName);
  if (model.outputs.length !== 1 || head?.className !== "Dense" || head.inbound.length !== 1) {
    throw new Error(`expected a model ending in one Dense layer, got ${head?.className ?? "none"}`);
  }
  if (mode === "imagenet")
    return { outputLayer: head.name, outputName: "logits", dropOutputActivation: true };
  return { outputLayer: head.inbound[0], outputName: "features" };
}

export async function convertResnet50(modelDir: string, mode: ResnetOutputMode): Promise<Buffer> {
  const model = await loadLayersModelSource(modelDir);
  return tfjsToOnnx(model, resnetConvertOptions(model, mode)).toBuffer();
}

export interface WrittenModel {
  onnx: string;
  manifest: string;
  sha256: string;
  bytes: number;
}

async function writeModel(
  file: string,
  bytes: Buffer,
  manifestFor: (sha: string) => object,
): Promise<WrittenModel> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, bytes);
  const sha256 = await sha256File(file);
  const manifest = file.replace(/\.onnx$/, ".json");
  await writeFile(manifest, `${JSON.stringify(manifestFor(sha256), null, 2)}\n`);
  return { onnx: file, manifest, sha256, bytes: bytes.length };
}

/** Writes resnet50-imagenet.onnx and resnet50-features.onnx with their manifests into `outDir`. */
export async function writeResnetModels(
  modelDir: string,
  outDir: string,
): Promise<{ imagenet: WrittenModel; features: WrittenModel }> {
  const model = await loadLayersModelSource(modelDir);
  const classes = await readImagenetLabels(modelDir);
  const version = RESNET_VERSION;
  const build = (mode: ResnetOutputMode) => tfjsToOnnx(model, resnetConvertOptions(model, mode));

  const imagenet = await writeModel(
    path.join(outDir, "resnet50-imagenet.onnx"),
    build("imagenet").toBuffer(),
    (sha256) => {
      const manifest: ModelManifest = manifestSchema.parse({
        name: "resnet50-imagenet",
        version,
        file: "resnet50-imagenet.onnx",
        sha256,
        classes,
        input: CAFFE_INPUT,
        output: { name: "logits", kind: "logits" },
        source: SOURCE,
      });
      return manifest;
    },
  );

  const featuresGraph = build("features");
  const size = featuresGraph.outputs[0]?.dims[1];
  if (typeof size !== "number") throw new Error("features output has no fixed size");
  const features = await writeModel(
    path.join(outDir, "resnet50-features.onnx"),
    featuresGraph.toBuffer(),
    (sha256): FeaturesManifest => ({
      name: "resnet50-features",
      version,
      file: "resnet50-features.onnx",
      sha256,
      input: CAFFE_INPUT,
      output: { name: "features", kind: "features", size },
      source: SOURCE,
    }),
  );
  return { imagenet, features };
}
