import path from "node:path";
import { resolveModel } from "@garbage/inference";
import { createLogger, type Logger } from "@garbage/log";
import { startHealthServer } from "@garbage/log/health-server";
import { type AgentConfig, AgentUsageError, agentHelp, parseAgentArgs } from "./config";
import { LocalClassifier } from "./local";
import { createAgentMetrics } from "./metrics";
import { MqttSource } from "./mqtt-source";
import { Sender } from "./sender";
import { Spool } from "./spool";
import { FolderWatcher } from "./watch-source";

/** The repo's models/ (three levels up from src/ and from a bundle's dist/ alike). */
const MODELS_DIR = path.resolve(import.meta.dirname, "../../../models");

/** How long a stop waits for the send in flight before leaving it to the next start (same key, no double). */
const STOP_GRACE_MS = 10_000;

export { AgentUsageError, agentHelp };

/**
 * `garbage agent`: runs until SIGTERM or SIGINT, then stops taking images, lets the spooling and the send in
 * flight finish (at most STOP_GRACE_MS), and resolves with exit code 0. Anything not sent stays in the spool.
 */
export async function agentMain(argv: string[], env = process.env, cwd = process.cwd()): Promise<number> {
  const parsed = parseAgentArgs(argv, env, cwd);
  if (parsed === "help") {
    console.log(agentHelp);
    return 0;
  }
  const log = createLogger({ service: "agent", level: parsed.logLevel });
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) return void log.info({ signal }, "already stopping, signal ignored");
    log.info({ signal }, "shutting down");
    stop.abort();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  try {
    await runAgent(parsed, log, stop.signal);
    log.info("stopped");
    return 0;
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
}

export async function runAgent(c: AgentConfig, log: Logger, stop: AbortSignal): Promise<void> {
  const spool = await Spool.open(c.spool, {
    maxBytes: c.spoolMaxBytes,
    minFreeBytes: c.minFreeBytes,
    whenFull: c.whenFull,
    sentDir: c.sentDir,
  });
  const metrics = createAgentMetrics(() => spool);
  const local = c.local
    ? await LocalClassifier.start({
        model: resolveModel(c.model, MODELS_DIR, "cpu"),
        threads: c.threads,
        maxBatch: Math.min(c.batchSize, 8),
        auditRate: c.auditRate,
      })
    : null;
  const sender = new Sender(
    spool,
    {
      api: c.api,
      key: c.key,
      kind: local ? "results" : "forward",
      batchSize: c.batchSize,
      maxWaitMs: c.maxWaitMs,
      auditRate: c.auditRate,
    },
    metrics,
    log,
  );
  const defaults = { site: c.site, line: c.line, camera: c.camera };
  const watchers = c.watch.map(
    (root) =>
      new FolderWatcher(
        { root, pathPattern: c.pathPattern, defaults, settleMs: c.settleMs, scanMs: c.scanMs },
        spool,
        metrics,
        log,
      ),
  );
  const mqtt = c.mqtt
    ? new MqttSource(
        { url: c.mqtt, topics: c.topic, clientId: c.mqttClientId, defaults },
        spool,
        metrics,
        log,
      )
    : null;
  // Metrics are an aid: a port already taken must not stop photos from being taken.
  const health = await startHealthServer({
    port: c.metricsPort,
    host: c.metricsHost,
    registry: metrics.registry,
    live: () => ({ ok: true, ...spool.stats() }),
    ready: () => ({
      ok: sender.lastError === null && (!mqtt || mqtt.connected),
      lastError: sender.lastError,
      lastSuccessAt: sender.lastSuccessAt,
      mqtt: mqtt ? mqtt.connected : undefined,
      ...spool.stats(),
    }),
  }).catch((err: Error) => {
    log.error(
      { err, port: c.metricsPort },
      "metrics server not started (--metrics-port); running without it",
    );
    return { port: null, close: async () => {} };
  });

  // Sending and classifying start before the sources, so the backlog of a previous run drains at once.
  const sending = sender.run(stop);
  const classifying = local?.run(spool, stop, metrics, log);
  for (const w of watchers) w.start();
  mqtt?.start();
  log.info(
    {
      mode: local ? "local" : "forward",
      modelVersion: local?.modelVersion,
      watch: c.watch,
      mqtt: Boolean(mqtt),
      spool: c.spool,
      backlog: spool.stats().items,
      metricsPort: health.port,
    },
    "agent ready",
  );

  await new Promise<void>((resolve) =>
    stop.aborted ? resolve() : stop.addEventListener("abort", () => resolve(), { once: true }),
  );
  await Promise.all([...watchers.map((w) => w.stop()), mqtt?.stop()]);
  const drained = await Promise.race([
    Promise.all([sending, classifying]).then(() => true),
    new Promise<boolean>((r) => setTimeout(r, STOP_GRACE_MS, false).unref()),
  ]);
  if (!drained) log.warn({ graceMs: STOP_GRACE_MS }, "send still in flight; it is resent on the next start");
  await local?.close().catch(() => {});
  await health.close();
}
