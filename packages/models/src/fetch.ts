import { createHash, randomBytes } from "node:crypto";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { ModelFile, ModelVersionRow } from "@garbage/db";
import { manifestPathFor, sha256File } from "@garbage/inference";
import type { ImageStore } from "@garbage/storage";
import { ModelFilesError } from "./errors";

export interface FetchOptions {
  store: ImageStore;
  /** A registry row, or just the parts of one this needs. */
  version: Pick<ModelVersionRow, "sha256" | "files"> & Partial<Pick<ModelVersionRow, "modelVersion">>;
  /** Files land in `<cacheDir>/<sha256 of the float onnx>/`. */
  cacheDir: string;
  /** int8 falls back to fp32 when the version has no int8 twin. */
  prefer: "int8" | "fp32";
}

/** The files one flavour needs: its onnx, its manifest and the reference embeddings. */
function pick(files: readonly ModelFile[], prefer: "int8" | "fp32") {
  const int8 = prefer === "int8" && files.some((f) => f.role === "int8");
  const onnx = files.find((f) => f.role === (int8 ? "int8" : "fp32"));
  const manifest = files.find((f) => f.role === (int8 ? "int8-manifest" : "manifest"));
  return { onnx, manifest, references: files.filter((f) => f.role === "reference") };
}

const sha256Of = (data: Buffer) => createHash("sha256").update(data).digest("hex");

/** Reuses `local` when its bytes are right, else writes the stored object through a temp name and renames. */
async function materialise(store: ImageStore, file: ModelFile, local: string): Promise<void> {
  const present = await sha256File(local).catch(() => null);
  if (present === file.sha256) return;
  const data = await store.get(file.key);
  const actual = sha256Of(data);
  if (actual !== file.sha256) {
    throw new ModelFilesError(
      "checksum",
      `stored ${file.key} has sha256 ${actual}, the registry says ${file.sha256}`,
    );
  }
  // A unique temp name per writer: two processes fetching at once each rename a complete file into place.
  const temp = `${local}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(temp, data);
    await rename(temp, local);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/**
 * Puts a version's files (the int8 or float flavour) into `<cacheDir>/<sha256>/`, sha256-checked, reusing
 * what is already there, and returns the onnx path to load: its manifest is `manifestPathFor(path)` beside it
 * and the reference embeddings lie where the manifest names them.
 */
export async function fetchModelFiles(options: FetchOptions): Promise<string> {
  const { store, version, prefer } = options;
  const { onnx, manifest, references } = pick(version.files, prefer);
  const label = version.modelVersion ?? version.sha256;
  if (!onnx || !manifest)
    throw new ModelFilesError("invalid", `${label} has no ${prefer} model and manifest`);
  const dir = path.join(options.cacheDir, version.sha256);
  await mkdir(dir, { recursive: true });
  const onnxPath = path.join(dir, path.basename(onnx.key));
  await materialise(store, onnx, onnxPath);
  // Named after the onnx, whatever it was called when stored, so the classifier finds it.
  await materialise(store, manifest, manifestPathFor(onnxPath));
  for (const ref of references) await materialise(store, ref, path.join(dir, path.basename(ref.key)));
  return onnxPath;
}
