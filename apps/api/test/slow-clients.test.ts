/**
 * Issue 22 on a real socket (startServer, as index.ts serves): early rejections reach the client, an idle
 * upload gives back its socket, file descriptor and `.part` file within UPLOAD_IDLE_MS, the server's own
 * timeouts close silent connections, and a 300 MB body does not grow the process.
 */
import { randomUUID } from "node:crypto";
import { readdirSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { Agent, request } from "node:http";
import { connect, type Socket } from "node:net";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { AppConfig } from "../src/config";
import { startServer } from "../src/server";
import { type Harness, makeApp, openHarness, png, type TestApp } from "./helpers";

let h: Harness;
let t: TestApp | undefined;
let server: ReturnType<typeof startServer> | undefined;
beforeAll(async () => {
  h = await openHarness();
});
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = undefined;
  await t?.dispose();
  t = undefined;
});
afterAll(async () => {
  await h?.close();
});

const LIMITS = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 300_000,
  socketIdleMs: 60_000,
  keepAliveTimeoutMs: 5_000,
};

async function serveApp(config: Partial<AppConfig>, limits: Partial<typeof LIMITS> = {}): Promise<number> {
  t = await makeApp(h, { config });
  const app = t.app;
  return new Promise((resolve) => {
    server = startServer(
      { fetch: app.fetch, port: 0, hostname: "127.0.0.1", limits: { ...LIMITS, ...limits } },
      resolve,
    );
  });
}

const openFds = () => readdirSync("/proc/self/fd").length;
const MiB = 1024 * 1024;
const chunk = Buffer.alloc(256 * 1024, 0x61);

/**
 * Sends a body of `bytes` as fast as the socket takes it (Content-Length, or chunked when `declared` is false)
 * and stops writing when the answer comes, as curl does. Resolves with the status, or the error the client
 * saw before any answer.
 */
function sendLarge(
  port: number,
  agent: Agent,
  opts: {
    method: string;
    path: string;
    bytes: number;
    declared: boolean;
    contentType: string;
    /** An attacker: keeps writing after the answer, until the server closes the connection. */
    ignoreAnswer?: boolean;
  },
): Promise<{ status?: number; connection?: string; body?: string; error?: string }> {
  return new Promise((resolve) => {
    let answered = false;
    const headers: Record<string, string | number> = { "content-type": opts.contentType };
    if (opts.declared) headers["content-length"] = opts.bytes;
    const req = request({ host: "127.0.0.1", port, method: opts.method, path: opts.path, agent, headers });
    req.on("response", (res) => {
      answered = true;
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => {
        resolve({ status: res.statusCode, connection: res.headers.connection, body });
        if (!opts.ignoreAnswer) req.destroy();
      });
    });
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (!answered) resolve({ error: err.code ?? err.message });
    });
    let sent = 0;
    const write = () => {
      while ((opts.ignoreAnswer || !answered) && sent < opts.bytes && !req.destroyed) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once("drain", write);
      }
      if (!answered && !req.destroyed) req.end();
    };
    write();
  });
}

describe("early rejections", () => {
  it("a large body always gets its 413 with Connection: close, and the pooled connection stays usable (20 tries)", async () => {
    const port = await serveApp({
      maxBodyBytes: 64 * 1024,
      limits: { maxFileBytes: MiB, maxFiles: 10, maxRequestBytes: MiB },
    });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const outcomes: string[] = [];
      for (let i = 0; i < 20; i++) {
        // A JSON route (refused from Content-Length) and an upload (refused while it streams, mid-body).
        const json = await sendLarge(port, agent, {
          method: "PUT",
          path: `/v1/results/${randomUUID()}/review`,
          bytes: 50 * MiB,
          declared: true,
          contentType: "application/json",
          ignoreAnswer: true,
        });
        const upload = await sendLarge(port, agent, {
          method: "POST",
          path: "/v1/batches",
          bytes: 50 * MiB,
          declared: false,
          contentType: "multipart/form-data; boundary=b",
          ignoreAnswer: true,
        });
        const next = await new Promise<number | string>((resolve) => {
          request({ host: "127.0.0.1", port, path: "/healthz", agent }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          })
            .on("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? "error"))
            .end();
        });
        outcomes.push(
          `${json.status ?? json.error}/${json.connection} ${upload.status ?? upload.error}/${upload.connection} ${next}`,
        );
      }
      expect(outcomes).toEqual(Array(20).fill("413/close 413/close 200"));
    } finally {
      agent.destroy();
    }
  }, 120_000);
});

describe("slow clients", () => {
  it("an idle upload is aborted within UPLOAD_IDLE_MS: 408, its socket, descriptor and .part file released", async () => {
    const port = await serveApp({ uploadIdle: { ms: 1_000, bytes: 1_024 } });
    const tmp = path.join((t as TestApp).dir, ".tmp");
    const parts = async () => (await readdir(tmp).catch(() => [])).filter((f) => f.endsWith(".part"));
    const baseline = openFds();
    const head = (await png(5, 5, 5, 64)).subarray(0, 200);
    const socket = connect(port, "127.0.0.1");
    let answer = "";
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      answer += d;
    });
    const closed = new Promise<number>((resolve) => socket.on("close", () => resolve(performance.now())));
    const started = performance.now();
    socket.write(
      "POST /v1/batches HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n" +
        'Content-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; name="site"\r\n\r\nslow\r\n' +
        '--b\r\nContent-Disposition: form-data; name="images"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n',
    );
    socket.write(head);
    // Ten bytes a second: the socket is never quiet, but the upload makes no progress.
    const trickle = setInterval(() => socket.writable && socket.write("x"), 100);
    try {
      await waitUntil(async () => (await parts()).length === 1, 900);
      const closedAt = await closed;
      // The idle time, then the answer is drained for DRAIN_LIMITS.quietMs of no progress (about 1.3 s in all;
      // a second of slack for a busy machine, against node:http's 300 s before).
      expect(closedAt - started).toBeLessThan(2_000);
      expect(answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(answer).toContain('"code":"upload_idle"');
      await waitUntil(async () => (await parts()).length === 0 && openFds() <= baseline, 1_000);
      expect(await (t as TestApp).storedFiles()).toEqual([]);
    } finally {
      clearInterval(trickle);
      socket.destroy();
    }
  });

  it("closes a connection whose request head never ends, and an idle kept-alive one", async () => {
    const port = await serveApp({}, { headersTimeoutMs: 1_000, keepAliveTimeoutMs: 500 });
    const silent = rawSocket(port);
    silent.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    expect(await silent.closedAfter()).toBeLessThan(2_500);
    const kept = rawSocket(port);
    kept.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    // node:http adds keepAliveTimeoutBuffer (1 s) to the socket's timeout, for clients' clocks.
    expect(await kept.closedAfter()).toBeLessThan(2_500);
    expect(kept.received()).toMatch(/^HTTP\/1\.1 200 /);
  });
});

describe("memory", () => {
  it("three 300 MB bodies against a JSON route leave the process where it was", async () => {
    const port = await serveApp({});
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    const agent = new Agent({ keepAlive: false });
    const attack = (declared: boolean) =>
      sendLarge(port, agent, {
        method: declared ? "PUT" : "POST",
        path: declared ? `/v1/results/${randomUUID()}/review` : "/v1/downloads",
        bytes: 300 * MiB,
        declared,
        contentType: "application/json",
        ignoreAnswer: true,
      });
    try {
      const results = await Promise.all([attack(true), attack(true), attack(false)]);
      expect(results.map((r) => r.status ?? r.error)).toEqual([413, 413, 413]);
    } finally {
      clearInterval(sampler);
      agent.destroy();
    }
    const grewMiB = (peak - before) / MiB;
    console.log(
      `RSS ${Math.round(before / MiB)} MiB before, peak ${Math.round(peak / MiB)} MiB under 3 x 300 MB bodies`,
    );
    expect(grewMiB).toBeLessThan(64);
  }, 60_000);
});

function rawSocket(port: number) {
  const socket: Socket = connect(port, "127.0.0.1");
  const started = performance.now();
  let text = "";
  socket.setEncoding("latin1");
  socket.on("data", (d: string) => {
    text += d;
  });
  socket.on("error", () => {});
  const closed = new Promise<number>((resolve) =>
    socket.on("close", () => resolve(performance.now() - started)),
  );
  return { socket, closedAfter: () => closed, received: () => text };
}

async function waitUntil(check: () => Promise<boolean> | boolean, timeoutMs: number) {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
