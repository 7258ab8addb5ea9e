import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { Spool } from "./spool";

export interface AgentMetrics {
  registry: Registry;
  accepted: Counter<"source" | "outcome">;
  sent: Counter<"kind">;
  failed: Counter<"kind" | "reason">;
  rejected: Counter<"kind">;
  classified: Counter<"outcome">;
  full: Gauge;
}

/** garbage_agent_*: the backlog and its age are read from the spool at scrape time. */
export function createAgentMetrics(spool: () => Spool | undefined): AgentMetrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry, prefix: "garbage_agent_" });
  new Gauge({
    name: "garbage_agent_backlog_images",
    help: "Images in the spool not yet acknowledged by the API",
    registers,
    collect() {
      this.set(spool()?.stats().items ?? 0);
    },
  });
  new Gauge({
    name: "garbage_agent_backlog_bytes",
    help: "Bytes of the images in the spool",
    registers,
    collect() {
      this.set(spool()?.stats().bytes ?? 0);
    },
  });
  new Gauge({
    name: "garbage_agent_oldest_item_age_seconds",
    help: "Age of the oldest image in the spool (0 when empty)",
    registers,
    collect() {
      this.set(spool()?.stats().oldestAgeS ?? 0);
    },
  });
  new Gauge({
    name: "garbage_agent_dropped_images",
    help: "Images dropped by --when-full drop-oldest since start",
    registers,
    collect() {
      this.set(spool()?.dropped ?? 0);
    },
  });
  return {
    registry,
    accepted: new Counter({
      name: "garbage_agent_accepted_total",
      help: "Images taken from a source: accepted into the spool, or a duplicate of one already there or sent",
      labelNames: ["source", "outcome"],
      registers,
    }),
    sent: new Counter({
      name: "garbage_agent_sent_images_total",
      help: "Images the API acknowledged (kind: batches, or results in local mode)",
      labelNames: ["kind"],
      registers,
    }),
    failed: new Counter({
      name: "garbage_agent_send_failures_total",
      help: "Failed send attempts (retried): network, 5xx, 408, 429, 401",
      labelNames: ["kind", "reason"],
      registers,
    }),
    rejected: new Counter({
      name: "garbage_agent_rejected_images_total",
      help: "Images the API refused for good (4xx), moved to the spool's rejected/ folder",
      labelNames: ["kind"],
      registers,
    }),
    classified: new Counter({
      name: "garbage_agent_classified_images_total",
      help: "Images classified on this device (local mode)",
      labelNames: ["outcome"],
      registers,
    }),
    full: new Gauge({
      name: "garbage_agent_spool_full",
      help: "1 while the spool refuses new images (size or free-disk limit)",
      registers,
    }),
  };
}
