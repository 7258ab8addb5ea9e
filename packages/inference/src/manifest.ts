import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { reviewSpecSchema } from "./review.js";

const triple = z.tuple([z.number(), z.number(), z.number()]);

/**
 * How pixels become the model's input tensor. `mean` and `std` are listed in the model's channel order
 * (after any RGB->BGR swap), and apply after `scale`: value = (pixel * scale - mean[c]) / std[c].
 */
export const inputSpecSchema = z.object({
  name: z.string().default("input"),
  layout: z.literal("NCHW").default("NCHW"),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  /** stretch: resize to exactly WxH (torchvision `Resize((h, w))`); crop: shorter side to `resizeShorter`, centre crop. */
  resize: z.enum(["stretch", "crop"]).default("stretch"),
  resizeShorter: z.number().int().positive().optional(),
  channelOrder: z.enum(["RGB", "BGR"]),
  scale: z.number().positive(),
  mean: triple,
  std: triple.default([1, 1, 1]),
});
export type InputSpec = z.infer<typeof inputSpecSchema>;

export const metricsSchema = z
  .object({
    dataset: z.string(),
    n: z.number().int(),
    accuracy: z.number(),
    macroF1: z.number(),
    weightedF1: z.number().optional(),
    perClass: z
      .record(
        z.string(),
        z.object({ precision: z.number(), recall: z.number(), f1: z.number(), support: z.number() }),
      )
      .optional(),
  })
  .passthrough();

export const manifestSchema = z
  .object({
    name: z.string(),
    version: z.string(),
    /** ONNX file name, relative to the manifest. */
    file: z.string(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    classes: z.array(z.string()).min(2),
    input: inputSpecSchema,
    output: z
      .object({
        name: z.string().default("logits"),
        kind: z.enum(["logits", "probabilities"]).default("logits"),
        /** Name of the pooled-feature output that the review's novelty distance reads, if the model has one. */
        embedding: z.string().optional(),
      })
      .default({ name: "logits", kind: "logits" }),
    /** Softmax temperature fitted on validation data; 1 means uncalibrated. */
    temperature: z.number().positive().default(1),
    metrics: z.array(metricsSchema).default([]),
    /** When a prediction needs a person: thresholds and reference embeddings, fitted by the training recipe. */
    review: reviewSpecSchema.optional(),
    training: z.record(z.string(), z.unknown()).optional(),
  })
  .passthrough();
export type ModelManifest = z.infer<typeof manifestSchema>;

export class ManifestError extends Error {
  override name = "ManifestError";
}

/** The manifest of `model.onnx` is `model.json` beside it. */
export function manifestPathFor(modelPath: string): string {
  return `${modelPath.replace(/\.onnx$/i, "")}.json`;
}

export async function readManifest(manifestPath: string): Promise<ModelManifest> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(manifestPath, "utf8"));
  } catch (err) {
    throw new ManifestError(`cannot read model manifest ${manifestPath}: ${(err as Error).message}`);
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ManifestError(`invalid model manifest ${manifestPath}: ${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}

export function modelFileFor(manifestPath: string, manifest: ModelManifest): string {
  return path.resolve(path.dirname(manifestPath), manifest.file);
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}
