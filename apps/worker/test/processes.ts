import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { REPO_ROOT } from "./helpers";

export interface LogLine {
  msg?: string;
  level?: string;
  [key: string]: unknown;
}

export interface ServiceProcess {
  name: string;
  child: ChildProcess;
  pid: number;
  /** Parsed JSON log lines (stdout and stderr). */
  logs: LogLine[];
  /** The log line that signalled readiness. */
  ready: LogLine;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves when stdout and stderr are closed: every process that inherited them has exited. */
  closed: Promise<void>;
  /** Output that was not JSON (stack traces of crashes), for failure messages. */
  stray: string[];
}

/**
 * Starts `node --import tsx <entry>` from the repo root, as `npm run dev:*` would, and resolves once a log
 * line with `msg === readyMsg` appears. Rejects (with the process output) if it exits or times out first.
 */
export function startService(
  name: string,
  entry: string,
  env: Record<string, string>,
  readyMsg: string,
  timeoutMs = 60_000,
): Promise<ServiceProcess> {
  return startCommand(
    name,
    [process.execPath, "--import", "tsx", path.join(REPO_ROOT, entry)],
    env,
    readyMsg,
    {
      timeoutMs,
    },
  );
}

export interface StartOptions {
  timeoutMs?: number;
  /** Own process group (pid = pgid), so a test can signal the whole group as a terminal or systemd does. */
  detached?: boolean;
}

/** Starts any command from the repo root (`node apps/worker/dist/index.js`, `npm run start:worker`, ...). */
export function startCommand(
  name: string,
  [command, ...args]: string[],
  env: Record<string, string>,
  readyMsg: string,
  { timeoutMs = 60_000, detached = false }: StartOptions = {},
): Promise<ServiceProcess> {
  if (!command) throw new Error("no command");
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached,
  });
  const logs: LogLine[] = [];
  const stray: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  // 'close' comes once every process holding the output pipes (the child's own children too) is gone.
  const closed = new Promise<void>((resolve) => child.once("close", () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${name} not ready after ${timeoutMs} ms:\n${stray.join("\n")}`));
    }, timeoutMs);
    const onLine = (line: string) => {
      if (!line.trim()) return;
      let parsed: LogLine;
      try {
        parsed = JSON.parse(line) as LogLine;
      } catch {
        stray.push(line);
        return;
      }
      logs.push(parsed);
      if (parsed.msg === readyMsg) {
        clearTimeout(timer);
        resolve({ name, child, pid: child.pid as number, logs, ready: parsed, exited, closed, stray });
      }
    };
    for (const stream of [child.stdout, child.stderr]) {
      let buffered = "";
      stream?.setEncoding("utf8");
      stream?.on("data", (chunk: string) => {
        buffered += chunk;
        const lines = buffered.split("\n");
        buffered = lines.pop() ?? "";
        lines.forEach(onLine);
      });
    }
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready:\n${stray.join("\n")}`));
    });
  });
}

export const startWorkerProcess = (name: string, env: Record<string, string>, timeoutMs?: number) =>
  startService(name, "apps/worker/src/index.ts", env, "worker ready", timeoutMs);

/** Sends `signal` and waits for the exit; SIGKILLs after `graceMs` so a test never leaves a process behind. */
export async function stopProcess(p: ServiceProcess, signal: NodeJS.Signals = "SIGTERM", graceMs = 30_000) {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return p.exited;
  p.child.kill(signal);
  const timer = setTimeout(() => p.child.kill("SIGKILL"), graceMs);
  const result = await p.exited;
  clearTimeout(timer);
  return result;
}

export async function scrapeMetric(port: number, name: string): Promise<number | undefined> {
  const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = body.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : undefined;
}
