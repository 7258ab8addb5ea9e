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
  /** Output that was not JSON (stack traces of crashes), for failure messages. */
  stray: string[];
}

/**
 * Starts `node --import tsx <entry>` from the repo root, as `npm run start:*` would, and resolves once a log
 * line with `msg === readyMsg` appears. Rejects (with the process output) if it exits or times out first.
 */
export function startService(
  name: string,
  entry: string,
  env: Record<string, string>,
  readyMsg: string,
  timeoutMs = 60_000,
): Promise<ServiceProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, entry)], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: LogLine[] = [];
  const stray: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
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
        resolve({ name, child, pid: child.pid as number, logs, ready: parsed, exited, stray });
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
