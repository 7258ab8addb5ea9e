import { createHash } from "node:crypto";
import { homedir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { LOG_LEVELS } from "@garbage/log";
import { z } from "zod";

export class AgentUsageError extends Error {}

const SIZE = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i;
const UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** "512MiB", "2G", "1000000": sizes people type. */
const bytes = z.string().transform((s, ctx) => {
  const m = SIZE.exec(s.trim());
  if (!m) {
    ctx.addIssue({ code: "custom", message: `not a size: ${s} (e.g. 2GiB, 500MiB, 1000000)` });
    return z.NEVER;
  }
  return Math.floor(Number(m[1]) * (UNITS[(m[2] ?? "").toLowerCase()] ?? 1));
});
const int = (min: number) => z.coerce.number().int().min(min);

const schema = z
  .object({
    watch: z.array(z.string().min(1)).default([]),
    pathPattern: z.string().optional(),
    mqtt: z.url().optional(),
    topic: z.array(z.string().min(1)).default([]),
    mqttClientId: z.string().min(1).max(128).optional(),
    site: z.string().min(1).max(200).optional(),
    line: z.string().min(1).max(200).optional(),
    camera: z.string().min(1).max(200).optional(),
    api: z.url(),
    key: z.string().min(1).optional(),
    local: z.boolean().default(false),
    model: z.string().optional(),
    threads: int(1).default(1),
    auditRate: z.coerce.number().min(0).max(1).default(0.02),
    spool: z.string().optional(),
    spoolMaxBytes: bytes.default(2 * 1024 ** 3),
    minFreeBytes: bytes.default(256 * 1024 ** 2),
    whenFull: z.enum(["refuse", "drop-oldest"]).default("refuse"),
    sentDir: z.string().optional(),
    batchSize: int(1).max(1_000).default(16),
    maxWaitMs: int(0).default(2_000),
    settleMs: int(0).default(1_000),
    scanMs: int(50).default(500),
    metricsPort: int(0).max(65_535).default(9465),
    metricsHost: z.string().default("127.0.0.1"),
    logLevel: z.enum(LOG_LEVELS).default("info"),
  })
  .refine((c) => c.watch.length > 0 || c.mqtt, { message: "give --watch <dir> and/or --mqtt <url>" })
  .refine((c) => !c.mqtt || c.topic.length > 0, { message: "--mqtt needs --topic" });

export type AgentConfig = z.infer<typeof schema> & { spool: string; mqttClientId: string };

export const agentHelp = `garbage agent (--watch <dir> ... | --mqtt <url> --topic <t> ...) --api <url> [options]
  Takes photos from a folder and/or an MQTT broker, keeps them in a durable spool and sends them to the API
  (forward mode: POST /v1/batches), or classifies them here with --local and sends the results (POST /v1/results).
  --watch <dir>            folder inbox (repeatable); a file is taken once complete and then removed from it
  --path-pattern <p>       folders under it that name the image, e.g. '{site}/{line}/{camera}'
  --mqtt <url> --topic <t> broker and topic (repeatable); '{site}/{line}/{camera}' in a topic are wildcards
  --site --line --camera   defaults when no pattern or message names them
  --api <url> --key <key>  the API (key also from GARBAGE_API_KEY)
  --local                  classify here (--model int8|fp32|path, --threads 1, --audit-rate 0.02)
  --spool <dir>            default ~/.local/state/garbage-agent/<sources hash>
  --spool-max-bytes 2GiB --min-free-bytes 256MiB --when-full refuse|drop-oldest
  --sent-dir <dir>         keep sent photos there (default: delete them)
  --batch-size 16 --max-wait-ms 2000 --settle-ms 1000 --scan-ms 500
  --metrics-port 9465 --metrics-host 127.0.0.1 (/metrics, /healthz, /readyz) --log-level info`;

const options = {
  watch: { type: "string", multiple: true },
  "path-pattern": { type: "string" },
  mqtt: { type: "string" },
  topic: { type: "string", multiple: true },
  "mqtt-client-id": { type: "string" },
  site: { type: "string" },
  line: { type: "string" },
  camera: { type: "string" },
  api: { type: "string" },
  key: { type: "string" },
  local: { type: "boolean" },
  model: { type: "string" },
  threads: { type: "string" },
  "audit-rate": { type: "string" },
  spool: { type: "string" },
  "spool-max-bytes": { type: "string" },
  "min-free-bytes": { type: "string" },
  "when-full": { type: "string" },
  "sent-dir": { type: "string" },
  "batch-size": { type: "string" },
  "max-wait-ms": { type: "string" },
  "settle-ms": { type: "string" },
  "scan-ms": { type: "string" },
  "metrics-port": { type: "string" },
  "metrics-host": { type: "string" },
  "log-level": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** Flags and the two variables (GARBAGE_API_KEY, LOG_LEVEL), parsed once; paths resolved against `cwd`. */
export function parseAgentArgs(
  argv: string[],
  env: Record<string, string | undefined>,
  cwd: string,
): AgentConfig | "help" {
  const { values } = parseArgs({ args: argv, options, allowPositionals: false, strict: true });
  if (values.help) return "help";
  const raw: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) if (k !== "help" && v !== undefined) raw[camel(k)] = v;
  raw.key ??= env.GARBAGE_API_KEY || undefined;
  raw.logLevel ??= env.LOG_LEVEL || undefined;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const flag = issue?.path.length
      ? `--${String(issue.path[0]).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: `
      : "";
    throw new AgentUsageError(`${flag}${issue?.message ?? "bad arguments"}\n\n${agentHelp}`);
  }
  const c = parsed.data;
  const watch = c.watch.map((d) => path.resolve(cwd, d));
  // One spool per set of sources and destination: two agents on one machine never share (or steal) items.
  const identity = createHash("sha256")
    .update(JSON.stringify([watch, c.mqtt ?? null, c.topic, c.api, c.local]))
    .digest("hex")
    .slice(0, 12);
  const stateHome = env.XDG_STATE_HOME || path.join(homedir(), ".local", "state");
  return {
    ...c,
    watch,
    sentDir: c.sentDir ? path.resolve(cwd, c.sentDir) : undefined,
    model: c.model && c.model !== "int8" && c.model !== "fp32" ? path.resolve(cwd, c.model) : c.model,
    spool: c.spool ? path.resolve(cwd, c.spool) : path.join(stateHome, "garbage-agent", identity),
    mqttClientId: c.mqttClientId ?? `garbage-agent-${identity}`,
  };
}
