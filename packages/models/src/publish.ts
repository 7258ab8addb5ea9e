import { createReadStream } from "node:fs";
import { access } from "node:fs/promises";
import path from "node:path";
import {
  type DbOrTx,
  getModelVersion,
  getModelVersionBySha256,
  insertModelVersion,
  type ModelFile,
  ModelRegistryError,
  type ModelVersionRow,
} from "@garbage/db";
import { type ModelManifest, manifestPathFor, readManifest, sha256File } from "@garbage/inference";
import type { ImageStore } from "@garbage/storage";
import { ModelFilesError } from "./errors";
import { modelKey } from "./keys";
import { siteInfoOf } from "./site-info";

export interface PublishOptions {
  db: DbOrTx;
  store: ImageStore;
  /** `<x>.onnx`; `<x>.json` must sit beside it, `<x>-int8.onnx` + `<x>-int8.json` are taken when present. */
  modelPath: string;
  /**
   * The version's scope. Undefined: the sites the manifest says it trained on (`site.sites`), else every site;
   * null or ['*']: every site.
   */
  sites?: readonly string[] | null;
  /** Who registered it (an API key's name, a user name). */
  by: string | null;
}

interface LocalFile {
  role: ModelFile["role"];
  file: string;
  sha256: string;
}

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

async function readChecked(onnx: string): Promise<{ manifest: ModelManifest; files: LocalFile[] }> {
  const manifestPath = manifestPathFor(onnx);
  if (!(await exists(onnx))) throw new ModelFilesError("invalid", `no model file ${onnx}`);
  const manifest = await readManifest(manifestPath).catch((err: Error) => {
    throw new ModelFilesError("invalid", err.message);
  });
  const actual = await sha256File(onnx);
  if (actual !== manifest.sha256) {
    throw new ModelFilesError(
      "checksum",
      `${onnx} has sha256 ${actual}, its manifest says ${manifest.sha256}`,
    );
  }
  const manifestSha = await sha256File(manifestPath);
  const files: LocalFile[] = [
    { role: "fp32", file: onnx, sha256: actual },
    { role: "manifest", file: manifestPath, sha256: manifestSha },
  ];
  const ref = manifest.review?.reference;
  if (ref) {
    // Stored flat beside the onnx: a reference in another folder would not be found after fetching.
    if (path.basename(ref.file) !== ref.file) {
      throw new ModelFilesError(
        "invalid",
        `${manifestPath}: review.reference.file must be a file name beside it`,
      );
    }
    const file = path.join(path.dirname(manifestPath), ref.file);
    if (!(await exists(file))) throw new ModelFilesError("invalid", `no reference embeddings ${file}`);
    const refSha = await sha256File(file);
    if (refSha !== ref.sha256) {
      throw new ModelFilesError(
        "checksum",
        `${file} has sha256 ${refSha}, ${manifestPath} says ${ref.sha256}`,
      );
    }
    files.push({ role: "reference", file, sha256: refSha });
  }
  return { manifest, files };
}

/** The float model's files and, when present, its int8 twin's (whose reference file is usually the same). */
async function collect(modelPath: string) {
  const fp32 = await readChecked(modelPath);
  const int8Path = modelPath.replace(/\.onnx$/i, "-int8.onnx");
  if (!(await exists(int8Path))) return { manifest: fp32.manifest, int8Manifest: null, files: fp32.files };
  const int8 = await readChecked(int8Path);
  if (int8.manifest.classes.join("\n") !== fp32.manifest.classes.join("\n")) {
    throw new ModelFilesError("invalid", `${int8Path} has other classes than ${modelPath}`);
  }
  const twin = int8.files
    .map(
      (f): LocalFile => ({
        ...f,
        role: f.role === "fp32" ? "int8" : f.role === "manifest" ? "int8-manifest" : f.role,
      }),
    )
    .filter((f) => !fp32.files.some((g) => g.file === f.file));
  return { manifest: fp32.manifest, int8Manifest: int8.manifest, files: [...fp32.files, ...twin] };
}

/**
 * Verifies a model's files against its manifests, stores them under `models/<sha256>/` and registers the
 * version (state candidate). Refuses a name@version or a float model that is already registered.
 */
export async function publishModel(options: PublishOptions): Promise<ModelVersionRow> {
  const { db, store, modelPath } = options;
  if (!/\.onnx$/i.test(modelPath)) throw new ModelFilesError("invalid", `${modelPath} is not an .onnx file`);
  const { manifest, int8Manifest, files } = await collect(modelPath);
  const label = `${manifest.name}@${manifest.version}`;
  if (await getModelVersion(db, label)) {
    throw new ModelRegistryError("duplicate", `${label} is already registered`);
  }
  const same = await getModelVersionBySha256(db, manifest.sha256);
  if (same) {
    throw new ModelRegistryError(
      "duplicate",
      `this model file is already registered as ${same.modelVersion}`,
    );
  }
  const keys = files.map((f) => modelKey(manifest.sha256, f.file));
  if (new Set(keys).size !== keys.length)
    throw new ModelFilesError("invalid", `${label}: two files share a name`);
  const info = siteInfoOf(manifest, label);
  const stored: ModelFile[] = [];
  for (const [i, f] of files.entries()) {
    const key = keys[i] as string;
    const put = await store.put(key, createReadStream(f.file));
    // Hashed a moment ago; different bytes now mean the file is being rewritten under us.
    if (put.sha256 !== f.sha256)
      throw new ModelFilesError("checksum", `${f.file} changed while it was stored`);
    stored.push({ role: f.role, key, sha256: put.sha256, bytes: put.bytes });
  }
  const trainedSites = info.trainedOn?.sites?.length ? info.trainedOn.sites : null;
  const sites = options.sites === undefined ? trainedSites : options.sites;
  return insertModelVersion(db, {
    name: manifest.name,
    version: manifest.version,
    sha256: manifest.sha256,
    sites: sites && !(sites.length === 1 && sites[0] === "*") ? sites : null,
    manifest,
    int8Manifest,
    files: stored,
    trainedOn: info.trainedOn,
    dataUntil: info.dataUntil,
    metrics: info.metrics,
    createdBy: options.by,
  });
}
