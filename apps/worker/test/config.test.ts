import { existsSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, REPO_ROOT } from "../src/config";

const base = { DATABASE_URL: "postgres://postgres@127.0.0.1:5432/x" };

describe("loadConfig", () => {
  it("fills documented defaults and resolves MODEL_PATH against the repo root", () => {
    const c = loadConfig(base);
    expect(c).toMatchObject({
      QUEUE_NAME: "garbage-classify",
      BATCH_SIZE: 8,
      BATCH_WAIT_MS: 30,
      WORKER_CONCURRENCY: 4,
      // A killed worker's jobs are picked up within 15 s (issue 22).
      LOCK_DURATION_MS: 8_000,
      STALLED_INTERVAL_MS: 4_000,
      WORKER_PROVIDER: "cpu",
      METRICS_PORT: 9464,
      SWEEP_INTERVAL_MS: 30_000,
      SWEEP_MIN_AGE_MS: 60_000,
      SWEEP_WATCH_MS: 1_000,
      ORPHAN_GRACE_MS: 3_600_000,
    });
    // A CPU worker runs the int8 model once it has been made; a GPU worker the float model.
    const int8 = path.join(REPO_ROOT, "models/garbage-resnet50-int8.onnx");
    const fp32 = path.join(REPO_ROOT, "models/garbage-resnet50.onnx");
    expect(c.MODEL_PATH).toBe(existsSync(int8) ? int8 : fp32);
    expect(loadConfig({ ...base, WORKER_PROVIDER: "cuda" }).MODEL_PATH).toBe(fp32);
    expect(loadConfig({ ...base, MODEL_PATH: "fp32" }).MODEL_PATH).toBe(fp32);
    expect(loadConfig({ ...base, MODEL_PATH: "int8" }).MODEL_PATH).toBe(int8);
    expect(loadConfig({ ...base, MODEL_PATH: "models/x.onnx" }).MODEL_PATH).toBe(
      path.join(REPO_ROOT, "models/x.onnx"),
    );
    expect(c.STORAGE_URL).toBe(`file://${path.join(REPO_ROOT, "data/images")}`);
    expect(c.WORKER_THREADS).toBeGreaterThanOrEqual(1);
  });

  it("treats empty variables as unset and coerces numbers", () => {
    const c = loadConfig({ ...base, BATCH_SIZE: "", BATCH_WAIT_MS: "5", MODEL_PATH: "/abs/m.onnx" });
    expect(c.BATCH_SIZE).toBe(8);
    expect(c.BATCH_WAIT_MS).toBe(5);
    expect(c.MODEL_PATH).toBe("/abs/m.onnx");
  });

  it("reports every invalid variable at once", () => {
    const bad = () =>
      loadConfig({ BATCH_SIZE: "0", WORKER_PROVIDER: "tpu", LOCK_DURATION_MS: "abc", QUEUE_NAME: "a:b" });
    expect(bad).toThrow(ConfigError);
    try {
      bad();
    } catch (err) {
      for (const name of [
        "DATABASE_URL",
        "BATCH_SIZE",
        "WORKER_PROVIDER",
        "LOCK_DURATION_MS",
        "QUEUE_NAME",
      ]) {
        expect((err as Error).message).toContain(name);
      }
    }
  });
});
