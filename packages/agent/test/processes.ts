/**
 * Real processes for the agent's tests: the API and a worker (`node --import tsx`, as `npm run dev:*`), the
 * agent through the CLI, and a private Mosquitto. Nothing is mocked; Postgres and Redis are the machine's.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";

export const ROOT = path.resolve(import.meta.dirname, "../../..");
export const DATABASE_URL =
  process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/garbage_test";
export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
export const MOSQUITTO = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"].find((p) => existsSync(p));

export interface Proc {
  name: string;
  child: ChildProcess;
  logs: { msg?: string; [k: string]: unknown }[];
  stray: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Spawns and resolves once a JSON log line has `msg === readyMsg` (null: at once). */
export function start(
  name: string,
  argv: string[],
  env: Record<string, string>,
  readyMsg: string | null,
  timeoutMs = 60_000,
): Promise<Proc> {
  const [cmd, ...args] = argv;
  const child = spawn(cmd as string, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Proc["logs"] = [];
  const stray: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const proc: Proc = { name, child, logs, stray, exited };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${name} not ready in ${timeoutMs} ms:\n${stray.join("\n")}`));
    }, timeoutMs);
    if (readyMsg === null) {
      clearTimeout(timer);
      resolve(proc);
    }
    for (const stream of [child.stdout, child.stderr]) {
      let buffered = "";
      stream?.setEncoding("utf8").on("data", (chunk: string) => {
        const lines = (buffered + chunk).split("\n");
        buffered = lines.pop() ?? "";
        for (const line of lines.filter((l) => l.trim())) {
          try {
            const parsed = JSON.parse(line) as Proc["logs"][number];
            logs.push(parsed);
            if (parsed.msg === readyMsg) {
              clearTimeout(timer);
              resolve(proc);
            }
          } catch {
            stray.push(line);
          }
        }
      });
    }
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      const errors = logs
        .filter((l) => l.level === "error" || l.level === "fatal")
        .map((l) => JSON.stringify(l));
      reject(
        new Error(
          `${name} exited (${code ?? signal}) before it was ready:\n${[...errors, ...stray].join("\n")}`,
        ),
      );
    });
  });
}

export async function kill(p: Proc | undefined, signal: NodeJS.Signals = "SIGKILL") {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill(signal);
  const timer = setTimeout(() => p.child.kill("SIGKILL"), 20_000);
  await p.exited;
  clearTimeout(timer);
}

const tsx = (entry: string) => [process.execPath, "--import", "tsx", path.join(ROOT, entry)];

export interface Stack {
  port: number;
  url: string;
  queueName: string;
  storeDir: string;
  api?: Proc;
  worker?: Proc;
  startApi(): Promise<Proc>;
  close(): Promise<void>;
}

/** The API on a fixed port (so the agent finds it again after a restart) and, with a model, one worker. */
export async function startStack(dir: string, workerModel: string | null): Promise<Stack> {
  const port = await freePort();
  const queueName = `agent-test-${randomUUID()}`;
  const storeDir = path.join(dir, "store");
  const common = {
    DATABASE_URL,
    REDIS_URL,
    QUEUE_NAME: queueName,
    STORAGE_URL: pathToFileURL(storeDir).href,
    LOG_LEVEL: "warn",
  };
  const stack: Stack = {
    port,
    url: `http://127.0.0.1:${port}`,
    queueName,
    storeDir,
    async startApi() {
      stack.api = await start(
        "api",
        tsx("apps/api/src/index.ts"),
        {
          ...common,
          LOG_LEVEL: "info",
          PORT: String(port),
          REQUIRE_MODEL: "false",
          MODEL_PATH: "/nonexistent.onnx",
        },
        "api listening",
      );
      return stack.api;
    },
    async close() {
      await Promise.all([kill(stack.api), kill(stack.worker)]);
    },
  };
  await stack.startApi();
  if (workerModel) {
    stack.worker = await start(
      "worker",
      tsx("apps/worker/src/index.ts"),
      {
        ...common,
        LOG_LEVEL: "info",
        MODEL_PATH: workerModel,
        WORKER_THREADS: "1",
        METRICS_PORT: "0",
        METRICS_HOST: "127.0.0.1",
        // The shared test database holds other suites' unfinished batches; a sweep would adopt them.
        SWEEP_INTERVAL_MS: "0",
      },
      "worker ready",
    );
  }
  return stack;
}

/** The agent through the CLI, as a person would start it. */
export function startAgent(args: string[], env: Record<string, string> = {}): Promise<Proc> {
  return start(
    "agent",
    [...tsx("apps/cli/src/main.ts"), "agent", ...args],
    { LOG_LEVEL: "info", ...env },
    "agent ready",
  );
}

export interface Broker {
  url: string;
  proc: Proc;
  close(): Promise<void>;
}

/** Debian's mosquitto on a free port, anonymous, in memory. */
export async function startMosquitto(): Promise<Broker> {
  const port = await freePort();
  const dir = await mkdtemp(path.join(tmpdir(), "agent-mosquitto-"));
  const conf = path.join(dir, "mosquitto.conf");
  await writeFile(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      "allow_anonymous true",
      "persistence false",
      "max_queued_messages 10000",
      "",
    ].join("\n"),
  );
  const proc = await start("mosquitto", [MOSQUITTO as string, "-c", conf], {}, null);
  // Ready when it accepts a connection.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`mosquitto did not listen:\n${proc.stray.join("\n")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    proc,
    close: async () => {
      await kill(proc, "SIGTERM");
      await rm(dir, { recursive: true, force: true });
    },
  };
}
