/**
 * @garbage/log/health-server: the small HTTP server a process without an API of its own (worker, agent)
 * answers Prometheus scrapes and health probes on. Here beside the log format because both are how an
 * operator watches a service, and both the worker and the agent depend on this package already.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface Health {
  ok: boolean;
  [detail: string]: unknown;
}

export interface HealthServerOptions {
  port: number;
  host: string;
  /** A prom-client Registry (only what the server reads of it, so this package needs no prom-client). */
  registry: { contentType: string; metrics(): Promise<string> };
  /** Refreshes scrape-time gauges (queue depth); its failure must not fail the scrape. */
  beforeScrape?: () => Promise<void>;
  /** Liveness: is this process still doing its job (restart it when not). */
  live: () => Health | Promise<Health>;
  /** Readiness: can it do its job now (dependencies reachable). */
  ready: () => Health | Promise<Health>;
}

export interface HealthServer {
  port: number;
  close: () => Promise<void>;
}

/**
 * GET /metrics (Prometheus text format), GET /healthz and GET /readyz (200, or 503 with the reason, as JSON);
 * 405 for other methods, 404 for other paths, 500 with the message when a probe or the scrape throws.
 */
export async function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const server = createServer((req, res) => {
    const url = req.url?.split("?")[0];
    const reply = async () => {
      if (req.method !== "GET") return send(405, "text/plain", "method not allowed\n");
      if (url === "/metrics") {
        await opts.beforeScrape?.().catch(() => {});
        return send(200, opts.registry.contentType, await opts.registry.metrics());
      }
      const probe = url === "/healthz" ? opts.live : url === "/readyz" ? opts.ready : undefined;
      if (probe) {
        const health = await probe();
        return send(health.ok ? 200 : 503, "application/json", `${JSON.stringify(health)}\n`);
      }
      return send(404, "text/plain", "not found\n");
    };
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { "content-type": type });
      res.end(body);
    };
    reply().catch((err: unknown) => send(500, "text/plain", `${err instanceof Error ? err.message : err}\n`));
  });
  // A scrape must never keep a shutting-down process alive.
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
