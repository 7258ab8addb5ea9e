#!/usr/bin/env node
// Container health check without curl (slim images have none): GET http://127.0.0.1:$PORT/healthz, exit 0 on a
// 2xx answer within 3 s, 1 otherwise. Usage: node scripts/healthcheck.mjs <PORT_VARIABLE> <default port>
//   api:    node scripts/healthcheck.mjs PORT 8080
//   worker: node scripts/healthcheck.mjs METRICS_PORT 9464   (the worker's metrics server answers /healthz)
const [variable = "PORT", fallback = "8080"] = process.argv.slice(2);
const port = process.env[variable]?.trim() || fallback;
try {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(3_000) });
  if (!res.ok) console.error(`healthz on port ${port}: HTTP ${res.status} ${await res.text()}`);
  process.exit(res.ok ? 0 : 1);
} catch (err) {
  console.error(`healthz on port ${port}: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
}
