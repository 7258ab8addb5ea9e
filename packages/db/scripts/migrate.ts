import { createLogger } from "@garbage/log";
import { createDb } from "../src/client";
import { migrate } from "../src/migrate";

// The one-shot `migrate` service (compose): it logs like the API and the worker.
const log = createLogger({ service: "migrate" });
const url = process.env.DATABASE_URL;
if (!url) {
  log.error("DATABASE_URL is not set");
  process.exit(1);
}
const handle = createDb(url, { max: 2 });
try {
  const started = performance.now();
  await migrate(handle.db);
  log.info({ durationMs: Math.round(performance.now() - started) }, "migrations applied");
} catch (err) {
  log.error({ err }, "migrations failed");
  process.exitCode = 1;
} finally {
  await handle.close();
}
