import path from "node:path";
import { pathToFileURL } from "node:url";
import { resolveModel } from "@garbage/inference";
import { DEFAULT_CHUNK_SIZE, DEFAULT_QUEUE_NAME } from "@garbage/queue";
import { z } from "zod";

const MiB = 1024 * 1024;

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

// A multiple of 0.05: the class_stats histogram answers exactly those thresholds (see packages/db).
const threshold = z.coerce
  .number()
  .min(0)
  .max(1)
  .refine((t) => Math.abs(t * 20 - Math.round(t * 20)) < 1e-9, "must be a multiple of 0.05")
  .default(0.5);

const envSchema = z.object({
  DATABASE_URL: z.string().min(1),
  REDIS_URL: z.string().min(1).default("redis://127.0.0.1:6379"),
  PORT: z.coerce.number().int().min(0).max(65_535).default(8080),
  STORAGE_URL: z.string().min(1).optional(),
  API_KEYS: z.string().optional(),
  MAX_FILE_BYTES: positiveInt(20 * MiB),
  MAX_FILES: positiveInt(1_000),
  MAX_REQUEST_BYTES: positiveInt(2_048 * MiB),
  MAX_PIXELS: positiveInt(40_000_000),
  LOW_CONFIDENCE_THRESHOLD: threshold,
  QUEUE_NAME: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default(DEFAULT_QUEUE_NAME),
  CHUNK_SIZE: positiveInt(DEFAULT_CHUNK_SIZE),
  // "fp32", "int8" or a path; unset: int8 when it is there (the API classifies on its CPU).
  MODEL_PATH: z.string().min(1).optional(),
  CLASSIFY_THREADS: z.coerce.number().int().positive().optional(),
  // Concurrent /v1/classify images share one session.run of up to this many; beyond MAX_QUEUE waiting, 503.
  CLASSIFY_MAX_BATCH: positiveInt(8),
  CLASSIFY_MAX_QUEUE: positiveInt(64),
  /** "false" lets the API report ready without a loaded model (inference then only happens in workers). */
  REQUIRE_MODEL: z.enum(["true", "false"]).default("true"),
});

export interface AppConfig {
  apiKeys: string[];
  limits: {
    maxFileBytes: number;
    maxFiles: number;
    maxRequestBytes: number;
  };
  lowConfidenceThreshold: number;
  chunkSize: number;
  requireModel: boolean;
  /** Refuse stats queries that would return more buckets than this. */
  maxStatsBuckets: number;
  /** How long a submission waits for Redis before answering 503. */
  enqueueTimeoutMs: number;
}

export interface Config extends AppConfig {
  databaseUrl: string;
  redisUrl: string;
  port: number;
  storageUrl: string;
  queueName: string;
  modelPath: string;
  maxPixels: number;
  classifyThreads: number | undefined;
  classifyMaxBatch: number;
  classifyMaxQueue: number;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Parses the environment once at startup; nothing else in the API reads process.env. */
export function parseConfig(env: Record<string, string | undefined>, cwd = process.cwd()): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError(`invalid environment:\n${z.prettifyError(parsed.error)}`);
  const e = parsed.data;
  return {
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    port: e.PORT,
    storageUrl: e.STORAGE_URL ?? pathToFileURL(path.resolve(cwd, "data/images")).toString(),
    apiKeys: (e.API_KEYS ?? "")
      .split(",")
      .map((k) => k.trim())
      .filter((k) => k.length > 0),
    limits: { maxFileBytes: e.MAX_FILE_BYTES, maxFiles: e.MAX_FILES, maxRequestBytes: e.MAX_REQUEST_BYTES },
    maxPixels: e.MAX_PIXELS,
    lowConfidenceThreshold: e.LOW_CONFIDENCE_THRESHOLD,
    queueName: e.QUEUE_NAME,
    chunkSize: e.CHUNK_SIZE,
    modelPath: resolveModel(e.MODEL_PATH, path.resolve(cwd, "models"), "cpu", cwd),
    classifyThreads: e.CLASSIFY_THREADS,
    classifyMaxBatch: e.CLASSIFY_MAX_BATCH,
    classifyMaxQueue: e.CLASSIFY_MAX_QUEUE,
    requireModel: e.REQUIRE_MODEL === "true",
    maxStatsBuckets: 10_000,
    enqueueTimeoutMs: 10_000,
  };
}
