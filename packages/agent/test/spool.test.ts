/** The spool's promises without processes: order, duplicates, restarts, the full policy; and the metadata. */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { compilePattern, exifCapturedAt, looksComplete } from "../src/metadata";
import { batchKey } from "../src/sender";
import { type NewItem, Spool } from "../src/spool";
import { photo } from "./fixtures";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
const tmp = async () => {
  const d = await mkdtemp(path.join(tmpdir(), "agent-spool-"));
  dirs.push(d);
  return d;
};
const opts = { maxBytes: 1e9, minFreeBytes: 0, whenFull: "refuse" as const };
const meta = (filename: string): NewItem => ({
  site: "s",
  line: "l",
  camera: "c",
  filename,
  capturedAt: "2026-11-26T10:00:00.000Z",
  capturedFrom: "file",
  source: "test",
});

describe("Spool", () => {
  it("keeps order and batches across a restart; what was sent is a duplicate afterwards", async () => {
    const dir = await tmp();
    const sentDir = path.join(dir, "sent");
    let spool = await Spool.open(path.join(dir, "spool"), { ...opts, sentDir });
    for (const n of ["a", "b", "c"])
      expect(await spool.accept(Buffer.from(n), meta(`${n}.jpg`))).toBe("accepted");
    expect(await spool.accept(Buffer.from("a"), meta("a.jpg"))).toBe("duplicate");
    const first = spool.unbatched().slice(0, 2);
    const m = await spool.formBatch("forward", first, batchKey("forward", first));

    spool = await Spool.open(path.join(dir, "spool"), { ...opts, sentDir });
    expect(spool.unbatched().map((i) => i.filename)).toEqual(["c.jpg"]);
    const [open] = spool.openBatches();
    expect(open).toMatchObject({ key: m.key, items: m.items });
    await spool.complete(open as typeof m);
    expect(spool.stats().items).toBe(1);
    expect((await readdir(sentDir)).sort()).toEqual(["000000000001-a.jpg", "000000000002-b.jpg"]);

    spool = await Spool.open(path.join(dir, "spool"), { ...opts, sentDir });
    expect(await spool.accept(Buffer.from("a"), meta("a.jpg"))).toBe("duplicate");
    expect(await spool.accept(Buffer.from("a"), meta("other-name.jpg"))).toBe("accepted");
    expect(spool.unbatched().map((i) => i.filename)).toEqual(["c.jpg", "other-name.jpg"]);
  });

  it("refuses when full, or drops the oldest unbatched items when told to", async () => {
    const dir = await tmp();
    const refuse = await Spool.open(path.join(dir, "r"), { ...opts, maxBytes: 10 });
    expect(await refuse.accept(Buffer.alloc(8), meta("a"))).toBe("accepted");
    expect(await refuse.accept(Buffer.alloc(8), meta("b"))).toBe("full");
    const drop = await Spool.open(path.join(dir, "d"), { ...opts, maxBytes: 10, whenFull: "drop-oldest" });
    expect(await drop.accept(Buffer.alloc(8, 1), meta("a"))).toBe("accepted");
    expect(await drop.accept(Buffer.alloc(8, 2), meta("b"))).toBe("accepted");
    expect(drop.unbatched().map((i) => i.filename)).toEqual(["b"]);
    expect(drop.dropped).toBe(1);
  });
});

describe("metadata", () => {
  it("patterns label folders and topics", () => {
    const topic = compilePattern("plants/{site}/{line}/+/#");
    expect(topic.subscription).toBe("plants/+/+/+/#");
    expect(topic.match("plants/p1/L2/cam/x/y")).toEqual({ site: "p1", line: "L2" });
    expect(topic.match("other/p1/L2/cam")).toBeNull();
    expect(compilePattern("{line}/cam-{camera}").match("L1/cam-7")).toEqual({ line: "L1", camera: "7" });
  });

  it("reads EXIF DateTimeOriginal with its offset, and tells a cut JPEG from a whole one", async () => {
    const withExif = await photo("red", 1, "2026:11:26 10:00:05");
    expect((await exifCapturedAt(withExif))?.toISOString()).toBe("2026-11-26T10:00:05.000Z");
    expect(await exifCapturedAt(await photo("red", 1))).toBeNull();
    expect(looksComplete(withExif)).toBe(true);
    expect(looksComplete(withExif.subarray(0, withExif.length - 40))).toBe(false);
  });
});
