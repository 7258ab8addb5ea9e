import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../src/config";

describe("parseConfig", () => {
  it("fills defaults and resolves paths against the working directory", () => {
    const config = parseConfig({ DATABASE_URL: "postgres://db/x" }, "/srv/app");
    expect(config).toMatchObject({
      databaseUrl: "postgres://db/x",
      redisUrl: "redis://127.0.0.1:6379",
      port: 8080,
      storageUrl: "file:///srv/app/data/images",
      apiKeys: [],
      rateLimit: { rps: 0, burst: 0 },
      limits: { maxFileBytes: 20 * 1024 * 1024, maxFiles: 1_000 },
      lowConfidenceThreshold: 0.5,
      queueName: "garbage-classify",
      chunkSize: 16,
      modelPath: "/srv/app/models/garbage-resnet50.onnx",
      classifyThreads: undefined,
      classifyMaxBatch: 8,
      classifyMaxWaitMs: 2,
      requireModel: true,
    });
  });

  it("takes DOWNLOAD_SECRET of at least 32 characters, else makes a random one per process", () => {
    const env = { DATABASE_URL: "postgres://db/x" };
    const secret = "s".repeat(32);
    expect(parseConfig({ ...env, DOWNLOAD_SECRET: secret }).downloadSecret).toBe(secret);
    expect(() => parseConfig({ ...env, DOWNLOAD_SECRET: "short" })).toThrow(ConfigError);
    expect(parseConfig({ ...env, DOWNLOAD_SECRET: "" }).downloadSecret).toMatch(/^[0-9a-f]{64}$/);
    const [a, b] = [parseConfig(env).downloadSecret, parseConfig(env).downloadSecret];
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(a).not.toBe(b);
  });

  it("finds the built web UI beside the api app (src or dist), or at WEB_DIR against the working directory", () => {
    const uiDir = path.resolve(import.meta.dirname, "../../web/dist");
    expect(parseConfig({ DATABASE_URL: "postgres://db/x" }, "/srv/app").webDir).toBe(uiDir);
    expect(parseConfig({ DATABASE_URL: "postgres://db/x", WEB_DIR: "ui" }, "/srv/app").webDir).toBe(
      "/srv/app/ui",
    );
  });

  it("parses every variable", () => {
    const config = parseConfig({
      DATABASE_URL: "postgres://db/x",
      REDIS_URL: "redis://r:6380",
      PORT: "9000",
      STORAGE_URL: "postgres",
      API_KEYS: " a, b:north ,,c:north| south |north",
      RATE_LIMIT_RPS: "2.5",
      RATE_LIMIT_BURST: "10",
      MAX_FILE_BYTES: "1000",
      MAX_FILES: "5",
      MAX_REQUEST_BYTES: "9000",
      MAX_PIXELS: "100",
      LOW_CONFIDENCE_THRESHOLD: "0.65",
      QUEUE_NAME: "q-1",
      CHUNK_SIZE: "8",
      MODEL_PATH: "/m/model.onnx",
      CLASSIFY_THREADS: "2",
      CLASSIFY_MAX_WAIT_MS: "0",
      REQUIRE_MODEL: "false",
    });
    expect(config).toMatchObject({
      port: 9000,
      storageUrl: "postgres",
      apiKeys: [
        { key: "a", sites: null },
        { key: "b", sites: ["north"] },
        { key: "c", sites: ["north", "south"] },
      ],
      rateLimit: { rps: 2.5, burst: 10 },
      limits: { maxFileBytes: 1000, maxFiles: 5, maxRequestBytes: 9000 },
      maxPixels: 100,
      lowConfidenceThreshold: 0.65,
      queueName: "q-1",
      chunkSize: 8,
      modelPath: "/m/model.onnx",
      classifyThreads: 2,
      classifyMaxWaitMs: 0,
      requireModel: false,
    });
  });

  it("defaults the burst to one second of the rate", () => {
    expect(parseConfig({ DATABASE_URL: "x", RATE_LIMIT_RPS: "0.2" }).rateLimit).toEqual({
      rps: 0.2,
      burst: 1,
    });
    expect(parseConfig({ DATABASE_URL: "x", RATE_LIMIT_RPS: "5" }).rateLimit).toEqual({ rps: 5, burst: 5 });
  });

  it.each([
    [{}],
    [{ DATABASE_URL: "x", PORT: "http" }],
    [{ DATABASE_URL: "x", MAX_FILES: "0" }],
    [{ DATABASE_URL: "x", LOW_CONFIDENCE_THRESHOLD: "0.33" }],
    [{ DATABASE_URL: "x", QUEUE_NAME: "a:b" }],
    [{ DATABASE_URL: "x", API_KEYS: "k:" }],
    [{ DATABASE_URL: "x", API_KEYS: ":north" }],
    [{ DATABASE_URL: "x", API_KEYS: "k:|" }],
    [{ DATABASE_URL: "x", RATE_LIMIT_RPS: "-1" }],
    [{ DATABASE_URL: "x", CLASSIFY_MAX_WAIT_MS: "-1" }],
    [{ DATABASE_URL: "x", RATE_LIMIT_RPS: "1", RATE_LIMIT_BURST: "0" }],
  ])("refuses %j", (env) => {
    expect(() => parseConfig(env)).toThrow(ConfigError);
  });
});
