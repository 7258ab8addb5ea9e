/**
 * Issue 24, MQTT: photos published to Debian's Mosquitto (QoS 1, metadata in MQTT 5 user properties and the
 * topic) while the API is killed for a while and the agent is SIGKILLed once: every photo exactly once, with
 * its site, line, camera and capture time. The 200 photos are scaled to 40 for the run time.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { DbHandle } from "@garbage/db";
import mqtt from "mqtt";
import { afterAll, beforeAll, expect, it } from "vitest";
import { openDb, photo, rowsOfSite, type Shade, sleep, tinyModel, waitFor } from "./fixtures";
import {
  type Broker,
  kill,
  MOSQUITTO,
  type Proc,
  type Stack,
  startAgent,
  startMosquitto,
  startStack,
} from "./processes";

const MESSAGES = 40;
let dir: string;
let db: DbHandle;
let stack: Stack | undefined;
let broker: Broker | undefined;
let agent: Proc | undefined;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "agent-mqtt-"));
  db = await openDb();
});
afterAll(async () => {
  await kill(agent);
  await stack?.close();
  await broker?.close();
  await db?.close();
  await rm(dir, { recursive: true, force: true });
});

if (!MOSQUITTO)
  console.warn("agent mqtt test skipped: no mosquitto binary (apt-get install mosquitto; .ci/run does)");

const BASE = Date.parse("2026-11-27T09:00:00Z");
const shades: Shade[] = ["red", "green", "blue"];

it.skipIf(!MOSQUITTO)(
  "every published photo exactly once through an API outage and an agent SIGKILL",
  async () => {
    stack = await startStack(dir, await tinyModel(path.join(dir, "model")));
    broker = await startMosquitto();
    const site = `agent-mqtt-${randomUUID().slice(0, 8)}`;
    const args = [
      ...["--mqtt", broker.url, "--topic", "plants/{site}/{line}/+", "--api", stack.url],
      ...[
        "--spool",
        path.join(dir, "spool"),
        "--batch-size",
        "6",
        "--max-wait-ms",
        "300",
        "--metrics-port",
        "0",
      ],
    ];
    agent = await startAgent(args);

    const publisher = await mqtt.connectAsync(broker.url, {
      protocolVersion: 5,
      clientId: `pub-${randomUUID()}`,
    });
    const expected = new Map<string, { line: string; camera: string; at: number }>();
    const publishing = (async () => {
      for (let i = 0; i < MESSAGES; i++) {
        const line = i % 2 === 0 ? "L1" : "L2";
        const camera = `cam-${i % 4}`;
        const filename = `m${String(i).padStart(3, "0")}.jpg`;
        const at = BASE + i * 1000;
        expected.set(filename, { line, camera, at });
        // Line from the topic, camera and capture time from user properties.
        await publisher.publishAsync(
          `plants/${site}/${line}/x`,
          await photo(shades[i % 3] as Shade, 100 + i),
          {
            qos: 1,
            properties: {
              userProperties: { camera, capturedAt: new Date(at).toISOString(), filename },
              contentType: "image/jpeg",
            },
          },
        );
        await sleep(150);
      }
    })();

    await sleep(1_500);
    await kill(stack.api);
    await sleep(1_500);
    await kill(agent);
    // Published while the agent is down: the broker keeps them for its persistent session.
    await sleep(1_500);
    agent = await startAgent(args);
    await sleep(4_000);
    await stack.startApi();
    await publishing;
    await publisher.endAsync();

    await waitFor(
      "every message to have a result",
      async () => {
        const r = await rowsOfSite(db, site);
        return r.length >= MESSAGES && r.every((x) => x.status !== null);
      },
      60_000,
    );
    await sleep(1_000);
    const rows = await rowsOfSite(db, site);
    expect(rows).toHaveLength(MESSAGES);
    expect(new Set(rows.map((r) => r.filename)).size).toBe(MESSAGES);
    for (const r of rows) {
      const want = expected.get(r.filename);
      expect(r, r.filename).toMatchObject({ site, line: want?.line, camera: want?.camera, status: "ok" });
      expect(new Date(r.captured_at).getTime(), r.filename).toBe(want?.at);
    }
    expect(agent.logs.some((l) => l.msg === "send failed, will retry")).toBe(true);
  },
  120_000,
);
