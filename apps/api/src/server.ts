import type { Server } from "node:http";
import { serve } from "@hono/node-server";

export interface ServerLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  socketIdleMs: number;
  keepAliveTimeoutMs: number;
}

/**
 * Serves `fetch` (createApp's) on node:http with the timeouts of Config.server (index.ts; tests too), so a slow or silent client
 * cannot hold a socket longer than they allow: the request head must arrive within headersTimeoutMs, the
 * whole request within requestTimeoutMs, a socket with no traffic either way is closed after socketIdleMs,
 * and a kept-alive connection waits keepAliveTimeoutMs for its next request. Uploads have their own, shorter
 * idle rule (UPLOAD_IDLE_MS, upload.ts).
 */
export function startServer(
  options: {
    fetch: Parameters<typeof serve>[0]["fetch"];
    port: number;
    hostname?: string;
    limits: ServerLimits;
  },
  onListening?: (port: number) => void,
): Server {
  const { limits } = options;
  const server = serve(
    {
      fetch: options.fetch,
      port: options.port,
      hostname: options.hostname,
      serverOptions: {
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        keepAliveTimeout: limits.keepAliveTimeoutMs,
        // node:http checks the two request timeouts this often (default 30 s, too coarse for a 10 s limit).
        connectionsCheckingInterval: Math.min(1_000, limits.headersTimeoutMs),
      },
    },
    (info) => onListening?.(info.port),
  ) as Server;
  // The socket inactivity timeout: node:http destroys the socket when it fires and nobody listens for it.
  server.timeout = limits.socketIdleMs;
  return server;
}
