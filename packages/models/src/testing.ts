import { randomInt } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { writeTinyModel, writeTinyReviewModel } from "@garbage/onnx";

export interface TinySiteModel {
  /** `<dir>/<name>.onnx`, what publishModel and `garbage models add` take. */
  modelPath: string;
  name: string;
  version: string;
}

const CLASSES = ["cardboard", "glass", "metal", "paper", "plastic", "trash"];

/**
 * Test fixture: a tiny classifier laid out like `npm run adapt`'s output: `<name>.onnx` + `<name>.json` with a
 * `site` block, reference embeddings, and (unless `int8: false`) an `<name>-int8` twin sharing them. The seed is
 * random by default, so every call is a new float model (the registry refuses one registered twice).
 */
export async function writeTinySiteModel(
  dir: string,
  o: {
    name: string;
    version?: string;
    sites?: string[] | null;
    dataUntil?: string;
    int8?: boolean;
    seed?: number;
  },
): Promise<TinySiteModel> {
  const version = o.version ?? "1";
  const seed = o.seed ?? randomInt(1, 2 ** 31);
  const site = {
    sites: o.sites ?? null,
    images: 12,
    perClass: { glass: 6, metal: 6 },
    source: "test",
    dataUntil: o.dataUntil ?? "2026-01-01T00:00:00.000Z",
  };
  const references = CLASSES.map((_, i) => CLASSES.map((__, j) => (i === j ? 1 : 0.1)));
  const extra = { version, site, metrics: [{ dataset: "site-cv", n: 12, accuracy: 0.9, macroF1: 0.88 }] };
  const modelPath = await writeTinyReviewModel(dir, {
    name: o.name,
    classes: CLASSES,
    seed,
    references,
    maxDistance: 0.9,
    manifest: extra,
  });
  if (o.int8 !== false) {
    const twin = await writeTinyModel(dir, { name: `${o.name}-int8`, classes: CLASSES, seed: seed + 1 });
    const float = JSON.parse(await readFile(path.join(dir, `${o.name}.json`), "utf8"));
    const own = JSON.parse(await readFile(twin.replace(/\.onnx$/, ".json"), "utf8"));
    // The int8 twin carries the float manifest's settings and reference file, with its own file and sha256.
    const manifest = { ...float, name: `${o.name}-int8`, file: own.file, sha256: own.sha256 };
    await writeFile(twin.replace(/\.onnx$/, ".json"), JSON.stringify(manifest));
  }
  return { modelPath, name: o.name, version };
}
