import type { Logger } from "@garbage/log";
import mqtt, { type IPublishPacket, type MqttClient } from "mqtt";
import {
  type CapturedFrom,
  compilePattern,
  exifCapturedAt,
  type Labels,
  labelsOf,
  type Pattern,
} from "./metadata";
import type { AgentMetrics } from "./metrics";
import type { Spool } from "./spool";

export interface MqttOptions {
  url: string;
  /** Topics to subscribe to; `{site}`, `{line}`, `{camera}` levels are wildcards whose values label the image. */
  topics: string[];
  clientId: string;
  defaults: Partial<Labels>;
}

/** The user properties (MQTT 5) the agent reads; everything else in a message is ignored. */
const PROPS = ["site", "line", "camera", "capturedAt", "filename"] as const;

const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

/**
 * Takes images from a broker. Message format: the payload is the image's bytes; metadata in MQTT 5 user
 * properties `site`, `line`, `camera`, `capturedAt` (ISO 8601), `filename`, else from the topic pattern and the
 * flags; capturedAt falls back to the image's EXIF time, then to the arrival time.
 *
 * At least once, end to end: a persistent session (fixed client id, clean start off, a week's session
 * expiry) and QoS 1, and the PUBACK only after the image is in the spool (mqtt.js sends it when
 * handleMessage calls back). A kill before that makes the broker deliver again; the spool's identity hash
 * turns the second copy into a duplicate. While the spool is full no message is acknowledged, and the broker
 * keeps them.
 */
export class MqttSource {
  private client: MqttClient | undefined;
  private readonly patterns: Pattern[];
  private stopped = false;
  connected = false;

  constructor(
    private readonly opts: MqttOptions,
    private readonly spool: Spool,
    private readonly metrics: AgentMetrics,
    private readonly log: Logger,
  ) {
    this.patterns = opts.topics.map(compilePattern);
  }

  start(): void {
    const client = mqtt.connect(this.opts.url, {
      clientId: this.opts.clientId,
      clean: false,
      protocolVersion: 5,
      properties: { sessionExpiryInterval: 7 * 24 * 3600 },
      reconnectPeriod: 1_000,
      connectTimeout: 10_000,
      // The session's in-flight messages are the broker's to redeliver; nothing is queued here.
      queueQoSZero: false,
    });
    this.client = client;
    client.handleMessage = (packet, done) => {
      this.take(packet as IPublishPacket).then(
        () => done(),
        (err: Error) => {
          // No PUBACK: the broker delivers it again on the next session.
          this.log.error({ err, topic: (packet as IPublishPacket).topic }, "message not spooled");
        },
      );
    };
    client.on("connect", (ack) => {
      this.connected = true;
      this.log.info({ url: redact(this.opts.url), sessionPresent: ack.sessionPresent }, "mqtt connected");
      const subs = Object.fromEntries(this.patterns.map((p) => [p.subscription, { qos: 1 as const }]));
      client.subscribe(subs, (err) => {
        if (err) this.log.error({ err }, "mqtt subscribe failed");
      });
    });
    client.on("close", () => {
      if (this.connected) this.log.warn("mqtt connection closed; reconnecting");
      this.connected = false;
    });
    client.on("error", (err) => this.log.warn({ err: err.message }, "mqtt error"));
  }

  private async take(packet: IPublishPacket): Promise<void> {
    const payload = packet.payload as Buffer;
    const props = packet.properties?.userProperties ?? {};
    const meta = Object.fromEntries(PROPS.map((k) => [k, one(props[k])]));
    const fromTopic = this.patterns.map((p) => p.match(packet.topic)).find((m) => m) ?? null;
    const labels = labelsOf({ ...fromTopic, ...pickLabels(meta) }, this.opts.defaults);
    let at: Date | null = meta.capturedAt ? new Date(meta.capturedAt) : null;
    let from: CapturedFrom = "message";
    if (!at || Number.isNaN(at.getTime())) {
      at = await exifCapturedAt(payload);
      from = "exif";
    }
    if (!at) {
      at = new Date();
      from = "received";
    }
    for (;;) {
      const outcome = await this.spool.accept(payload, {
        ...labels,
        filename: meta.filename ?? null,
        capturedAt: at.toISOString(),
        capturedFrom: from,
        source: `mqtt:${packet.topic}`,
      });
      if (outcome !== "full") {
        this.metrics.full.set(0);
        this.metrics.accepted.inc({ source: "mqtt", outcome });
        return;
      }
      this.metrics.full.set(1);
      if (this.stopped) throw new Error("stopping with the spool full");
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }

  /** Disconnects; a message being spooled finishes and is acknowledged first. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.client?.endAsync(false).catch(() => {});
  }
}

function pickLabels(meta: Record<string, string | undefined>): Partial<Labels> {
  const out: Partial<Labels> = {};
  for (const k of ["site", "line", "camera"] as const) if (meta[k]) out[k] = meta[k];
  return out;
}

const redact = (url: string) => url.replace(/\/\/[^@/]*@/, "//***@");
