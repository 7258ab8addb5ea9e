import { randomBytes } from "node:crypto";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { resolveModel } from "@garbage/inference";
import { LOG_LEVELS, type LogLevel } from "@garbage/log";
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
  // A token bucket per API key, per API process: RATE_LIMIT_RPS refill, RATE_LIMIT_BURST capacity; 0 disables.
  RATE_LIMIT_RPS: z.coerce.number().min(0).default(0),
  RATE_LIMIT_BURST: z.coerce.number().int().positive().optional(),
  MAX_FILE_BYTES: positiveInt(20 * MiB),
  MAX_FILES: positiveInt(1_000),
  MAX_REQUEST_BYTES: positiveInt(2_048 * MiB),
  MAX_PIXELS: positiveInt(40_000_000),
  // POST /v1/models: every part of one model upload together (a float ResNet50, its int8 twin and references).
  MODEL_MAX_BYTES: positiveInt(256 * MiB),
  // Every request body but the four uploads (JSON bodies and anything sent to another route): refused with 413
  // before it is read when Content-Length says so, else once this many bytes arrived (never buffered beyond).
  BODY_MAX_BYTES: positiveInt(64 * 1024),
  // An upload that delivers fewer than UPLOAD_IDLE_BYTES in UPLOAD_IDLE_MS is aborted (408) and its partial
  // file removed: a client trickling a byte a second otherwise holds a socket and an open file for minutes.
  UPLOAD_IDLE_MS: positiveInt(15_000),
  UPLOAD_IDLE_BYTES: positiveInt(16 * 1024),
  // The server's own limits (node:http): the request head, the whole request (head and body; MAX_REQUEST_BYTES
  // must fit, 2 GiB at 7 MB/s), a socket with no traffic at all, and an idle keep-alive connection.
  HEADERS_TIMEOUT_MS: positiveInt(10_000),
  REQUEST_TIMEOUT_MS: positiveInt(300_000),
  SOCKET_IDLE_MS: positiveInt(60_000),
  KEEP_ALIVE_TIMEOUT_MS: positiveInt(5_000),
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
  // How long a lone image waits for others to share its run; every millisecond is added to one client's latency.
  CLASSIFY_MAX_WAIT_MS: z.coerce.number().int().min(0).default(2),
  /** "false" lets the API report ready without a loaded model (inference then only happens in workers). */
  REQUIRE_MODEL: z.enum(["true", "false"]).default("true"),
  // Where `garbage eval --report <dir>` wrote its report (or a folder of such reports): GET /v1/model shows it.
  EVAL_REPORT_DIR: z.string().min(1).optional(),
  LOG_LEVEL: z.string().toLowerCase().pipe(z.enum(LOG_LEVELS)).default("info"),
  /** The built web UI; default apps/web/dist (scripts/build-web.mjs). */
  WEB_DIR: z.string().min(1).optional(),
  // Signs the short-lived download links (POST /v1/downloads); replicas behind one address must share it.
  // compose passes `${DOWNLOAD_SECRET:-}`: empty means unset, not a too-short secret.
  DOWNLOAD_SECRET: z.preprocess(
    (v) => (v === "" ? undefined : v),
    z.string().min(32, "at least 32 characters").optional(),
  ),
});

// apps/api/src/config.ts and the bundle apps/api/dist/index.js sit at the same depth: both find apps/web/dist.
const DEFAULT_WEB_DIR = fileURLToPath(new URL("../../web/dist", import.meta.url));

/** An API key from API_KEYS: `KEY` (every site) or `KEY:SITE1|SITE2` (only those). */
export interface EnvApiKey {
  key: string;
  sites: string[] | null;
}

export interface AppConfig {
  apiKeys: EnvApiKey[];
  /** How long a database key lookup (hit or miss) is reused: the longest a revoked key keeps working. */
  apiKeyCacheMs: number;
  /** Requests per second refilled per API key, and the bucket size; rps 0 disables the limit. */
  rateLimit: { rps: number; burst: number };
  limits: {
    maxFileBytes: number;
    maxFiles: number;
    maxRequestBytes: number;
  };
  /** Every request body but the uploads' (JSON included). */
  maxBodyBytes: number;
  /** An upload delivering fewer than `bytes` within `ms` is aborted. */
  uploadIdle: { ms: number; bytes: number };
  lowConfidenceThreshold: number;
  chunkSize: number;
  requireModel: boolean;
  /** Refuse stats queries that would return more buckets than this. */
  maxStatsBuckets: number;
  /** How long a submission waits for Redis before answering 503. */
  enqueueTimeoutMs: number;
  /** Decoded size limit for images the API itself decodes (thumbnails; the classifier has its own). */
  maxPixels: number;
  /** An eval report folder (or a folder of them); null: /v1/model has no report. */
  evalReportDir: string | null;
  /** Where the built web UI is (index.html, docs.html, assets/); absent or null: no UI. */
  webDir?: string | null;
  /** HMAC key of download links; a link works on every API process that has the same one. */
  downloadSecret: string;
  /** Largest model upload (POST /v1/models), all parts together. */
  modelMaxBytes: number;
}

export interface Config extends AppConfig {
  databaseUrl: string;
  redisUrl: string;
  port: number;
  storageUrl: string;
  queueName: string;
  modelPath: string;
  classifyThreads: number | undefined;
  classifyMaxBatch: number;
  classifyMaxQueue: number;
  classifyMaxWaitMs: number;
  logLevel: LogLevel;
  /** node:http's headersTimeout, requestTimeout, timeout (socket idle) and keepAliveTimeout. */
  server: {
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    socketIdleMs: number;
    keepAliveTimeoutMs: number;
  };
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
    apiKeys: parseApiKeys(e.API_KEYS ?? ""),
    apiKeyCacheMs: 2_000,
    rateLimit: rateLimit(e.RATE_LIMIT_RPS, e.RATE_LIMIT_BURST),
    limits: {
      maxFileBytes: e.MAX_FILE_BYTES,
      maxFiles: e.MAX_FILES,
      maxRequestBytes: e.MAX_REQUEST_BYTES,
    },
    maxBodyBytes: e.BODY_MAX_BYTES,
    uploadIdle: { ms: e.UPLOAD_IDLE_MS, bytes: e.UPLOAD_IDLE_BYTES },
    server: {
      headersTimeoutMs: e.HEADERS_TIMEOUT_MS,
      requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
      socketIdleMs: e.SOCKET_IDLE_MS,
      keepAliveTimeoutMs: e.KEEP_ALIVE_TIMEOUT_MS,
    },
    maxPixels: e.MAX_PIXELS,
    lowConfidenceThreshold: e.LOW_CONFIDENCE_THRESHOLD,
    queueName: e.QUEUE_NAME,
    chunkSize: e.CHUNK_SIZE,
    modelPath: resolveModel(e.MODEL_PATH, path.resolve(cwd, "models"), "cpu", cwd),
    classifyThreads: e.CLASSIFY_THREADS,
    classifyMaxBatch: e.CLASSIFY_MAX_BATCH,
    classifyMaxQueue: e.CLASSIFY_MAX_QUEUE,
    classifyMaxWaitMs: e.CLASSIFY_MAX_WAIT_MS,
    logLevel: e.LOG_LEVEL,
    requireModel: e.REQUIRE_MODEL === "true",
    maxStatsBuckets: 10_000,
    enqueueTimeoutMs: 10_000,
    evalReportDir: e.EVAL_REPORT_DIR ? path.resolve(cwd, e.EVAL_REPORT_DIR) : null,
    webDir: e.WEB_DIR ? path.resolve(cwd, e.WEB_DIR) : DEFAULT_WEB_DIR,
    // Unset: a random one, so links only work on the process that issued them (enough for one replica).
    downloadSecret: e.DOWNLOAD_SECRET ?? randomBytes(32).toString("hex"),
    modelMaxBytes: e.MODEL_MAX_BYTES,
  };
}

export function parseApiKeys(value: string): EnvApiKey[] {
  const keys: EnvApiKey[] = [];
  for (const entry of value.split(",")) {
    const trimmed = entry.trim();
    if (trimmed.length === 0) continue;
    const colon = trimmed.indexOf(":");
    if (colon < 0) {
      keys.push({ key: trimmed, sites: null });
      continue;
    }
    const key = trimmed.slice(0, colon).trim();
    const sites = [
      ...new Set(
        trimmed
          .slice(colon + 1)
          .split("|")
          .map((s) => s.trim())
          .filter(Boolean),
      ),
    ];
    // `KEY:` would silently mean "no site at all" (or, worse, read as "every site"): refuse it.
    if (key.length === 0 || sites.length === 0) {
      throw new ConfigError("invalid API_KEYS: each entry is KEY or KEY:SITE1|SITE2 with at least one site");
    }
    keys.push({ key, sites });
  }
  return keys;
}

function rateLimit(rps: number, burst: number | undefined): AppConfig["rateLimit"] {
  if (rps === 0) return { rps: 0, burst: 0 };
  // Default burst: one second's worth, at least one request.
  return { rps, burst: burst ?? Math.max(1, Math.ceil(rps)) };
}
