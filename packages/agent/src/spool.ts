import { createHash } from "node:crypto";
import { appendFile, mkdir, open, readdir, readFile, rename, rm, statfs, writeFile } from "node:fs/promises";
import path from "node:path";
import type { CapturedFrom, Labels } from "./metadata";

/** What the spool knows of one accepted image; stored as the item file's JSON header. */
export interface ItemHeader extends Labels {
  v: 1;
  /** sha256 of the image's identity: its bytes and metadata (see identityHash). */
  hash: string;
  seq: number;
  filename: string | null;
  capturedAt: string;
  capturedFrom: CapturedFrom;
  acceptedAt: string;
  bytes: number;
  source: string;
}

export interface SpoolItem extends ItemHeader {
  /** The item's file name in items/: `<seq>-<hash prefix>.item`, so a directory listing is the order. */
  name: string;
}

export type NewItem = Omit<ItemHeader, "v" | "hash" | "seq" | "acceptedAt" | "bytes">;

export interface BatchManifest {
  v: 1;
  name: string;
  kind: "forward" | "results";
  /** The Idempotency-Key, fixed when the batch is formed so that every retry, after any restart, reuses it. */
  key: string;
  items: string[];
  /** The items' identity hashes: a batch whose every hash is in the ledger was sent. */
  hashes: string[];
  createdAt: string;
}

export interface SpoolOptions {
  maxBytes: number;
  minFreeBytes: number;
  whenFull: "refuse" | "drop-oldest";
  /** Sent images are moved here (as `<seq>-<filename>`) instead of deleted. */
  sentDir?: string;
}

export type AcceptOutcome = "accepted" | "duplicate" | "full";

const LEDGER_KEEP = 100_000;
const pad = (n: number) => String(n).padStart(12, "0");

/**
 * Identity of an image: its bytes and the metadata that came with it. A capture time the agent made up (the
 * time a message arrived) is left out, so a broker's redelivery of the same message is the same image.
 */
export function identityHash(bytes: Uint8Array, item: NewItem): string {
  const meta = [item.site, item.line, item.camera, item.filename];
  if (item.capturedFrom !== "received") meta.push(item.capturedAt);
  return createHash("sha256").update(JSON.stringify(meta)).update("\n").update(bytes).digest("hex");
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Write to tmp/, fsync, rename into place, fsync the directory: the file is whole or absent after a crash. */
async function durableWrite(tmpDir: string, target: string, data: Uint8Array | string): Promise<void> {
  const tmp = path.join(tmpDir, `${path.basename(target)}.${process.pid}.tmp`);
  const fh = await open(tmp, "w");
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, target);
  await syncDir(path.dirname(target));
}

/**
 * The on-disk spool: every accepted image is an fsynced file before its source lets go of it (the watched
 * file is removed, the MQTT message acknowledged), batches are fixed in a manifest before their first send,
 * and what was sent is recorded in a ledger before it is deleted. Layout: items/, batches/, results/ (local
 * mode), rejected/ (what the API refused for good), tmp/, sent.log.
 */
export class Spool {
  private readonly items: SpoolItem[] = [];
  private readonly pendingHashes = new Set<string>();
  private readonly sent = new Set<string>();
  private readonly batched = new Map<string, string>();
  private readonly manifests: BatchManifest[] = [];
  private readonly resultNames = new Set<string>();
  private seq = 0;
  private bytes = 0;
  private lock: Promise<unknown> = Promise.resolve();
  private waiters: (() => void)[] = [];
  dropped = 0;
  rejected = 0;

  private constructor(
    readonly dir: string,
    private readonly opts: SpoolOptions,
  ) {}

  private at = (...p: string[]) => path.join(this.dir, ...p);

  static async open(dir: string, opts: SpoolOptions): Promise<Spool> {
    const spool = new Spool(dir, opts);
    await spool.load();
    return spool;
  }

  private async load(): Promise<void> {
    for (const sub of ["items", "batches", "results", "rejected"])
      await mkdir(this.at(sub), { recursive: true });
    await rm(this.at("tmp"), { recursive: true, force: true });
    await mkdir(this.at("tmp"));
    if (this.opts.sentDir) await mkdir(this.opts.sentDir, { recursive: true });
    const ledger = await readFile(this.at("sent.log"), "utf8").catch(() => "");
    const lines = ledger.split("\n").filter((l) => /^[0-9a-f]{64}$/.test(l));
    for (const h of lines.slice(-LEDGER_KEEP)) this.sent.add(h);
    if (lines.length > 2 * LEDGER_KEEP)
      await durableWrite(this.at("tmp"), this.at("sent.log"), `${[...this.sent].join("\n")}\n`);

    for (const name of (await readdir(this.at("items"))).filter((n) => n.endsWith(".item")).sort()) {
      const header = await this.readHeader(name).catch(() => null);
      // A file without a readable header never finished its rename: it cannot exist, but never trust it.
      if (!header) continue;
      this.items.push({ ...header, name });
      this.pendingHashes.add(header.hash);
      this.bytes += header.bytes;
      this.seq = Math.max(this.seq, header.seq);
    }
    for (const name of await readdir(this.at("results"))) this.resultNames.add(name.replace(/\.json$/, ""));
    for (const file of (await readdir(this.at("batches"))).filter((n) => n.endsWith(".json")).sort()) {
      const m = JSON.parse(await readFile(this.at("batches", file), "utf8")) as BatchManifest;
      this.seq = Math.max(this.seq, Number(m.name));
      const present = m.items.filter((n) => this.items.some((i) => i.name === n));
      if (present.length === 0 || m.hashes.every((h) => this.sent.has(h))) {
        // Sent before the crash, its clean-up cut short: finish it.
        await this.finish(m, present);
        continue;
      }
      this.manifests.push(m);
      for (const n of m.items) this.batched.set(n, m.name);
    }
  }

  private async readHeader(name: string): Promise<ItemHeader> {
    const fh = await open(this.at("items", name), "r");
    try {
      const len = Buffer.alloc(4);
      await fh.read(len, 0, 4, 0);
      const head = Buffer.alloc(len.readUInt32BE(0));
      await fh.read(head, 0, head.length, 4);
      return JSON.parse(head.toString("utf8")) as ItemHeader;
    } finally {
      await fh.close();
    }
  }

  /** One at a time: sequence numbers, file order and the hash sets must agree. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => {});
    return run;
  }

  accept(bytes: Uint8Array, item: NewItem): Promise<AcceptOutcome> {
    return this.serial(async () => {
      const hash = identityHash(bytes, item);
      if (this.pendingHashes.has(hash) || this.sent.has(hash)) return "duplicate";
      if (!(await this.makeRoom(bytes.length))) return "full";
      const seq = this.seq + 1;
      const header: ItemHeader = {
        v: 1,
        ...item,
        hash,
        seq,
        acceptedAt: new Date().toISOString(),
        bytes: bytes.length,
      };
      const name = `${pad(seq)}-${hash.slice(0, 16)}.item`;
      const head = Buffer.from(JSON.stringify(header));
      const len = Buffer.alloc(4);
      len.writeUInt32BE(head.length);
      await durableWrite(this.at("tmp"), this.at("items", name), Buffer.concat([len, head, bytes]));
      this.seq = seq;
      this.items.push({ ...header, name });
      this.pendingHashes.add(hash);
      this.bytes += bytes.length;
      for (const wake of this.waiters.splice(0)) wake();
      return "accepted";
    });
  }

  /** The backlog limit: spool bytes and the disk's free space. Refuse, or drop the oldest unbatched items. */
  private async makeRoom(size: number): Promise<boolean> {
    const fs = await statfs(this.dir);
    let free = fs.bavail * fs.bsize;
    const fits = () => this.bytes + size <= this.opts.maxBytes && free - size >= this.opts.minFreeBytes;
    if (fits() || this.opts.whenFull === "refuse") return fits();
    for (const victim of this.items.filter((i) => !this.batched.has(i.name))) {
      if (fits()) break;
      await this.remove(victim);
      await rm(this.at("results", `${victim.name}.json`), { force: true });
      free += victim.bytes;
      this.dropped += 1;
    }
    return fits();
  }

  private async remove(item: SpoolItem, keepAt?: string): Promise<void> {
    if (keepAt) {
      const data = await readFile(this.at("items", item.name));
      const body = data.subarray(4 + data.readUInt32BE(0));
      await writeFile(path.join(keepAt, `${pad(item.seq)}-${item.filename ?? "image"}`), body);
    }
    await rm(this.at("items", item.name), { force: true });
    const i = this.items.indexOf(item);
    if (i >= 0) this.items.splice(i, 1);
    this.pendingHashes.delete(item.hash);
    this.batched.delete(item.name);
    this.resultNames.delete(item.name);
    this.bytes -= item.bytes;
  }

  async readImage(item: SpoolItem): Promise<Buffer> {
    const data = await readFile(this.at("items", item.name));
    return data.subarray(4 + data.readUInt32BE(0));
  }

  /** Items in acceptance order that no batch holds yet. */
  unbatched(): SpoolItem[] {
    return this.items.filter((i) => !this.batched.has(i.name));
  }

  /** Batches formed and not yet acknowledged, oldest first: they go before anything new. */
  openBatches(): BatchManifest[] {
    return [...this.manifests];
  }

  item(name: string): SpoolItem | undefined {
    return this.items.find((i) => i.name === name);
  }

  formBatch(kind: BatchManifest["kind"], items: SpoolItem[], key: string): Promise<BatchManifest> {
    return this.serial(async () => {
      const m: BatchManifest = {
        v: 1,
        name: pad(++this.seq),
        kind,
        key,
        items: items.map((i) => i.name),
        hashes: items.map((i) => i.hash),
        createdAt: new Date().toISOString(),
      };
      await durableWrite(this.at("tmp"), this.at("batches", `${m.name}.json`), JSON.stringify(m));
      this.manifests.push(m);
      for (const i of items) this.batched.set(i.name, m.name);
      return m;
    });
  }

  /** The API has the batch: ledger first (a re-delivered source is then a duplicate), then clean up. */
  complete(m: BatchManifest): Promise<void> {
    return this.serial(async () => {
      const items = m.items.map((n) => this.item(n)).filter((i): i is SpoolItem => !!i);
      await appendFile(this.at("sent.log"), items.map((i) => `${i.hash}\n`).join(""));
      const fh = await open(this.at("sent.log"), "r+");
      await fh.sync();
      await fh.close();
      for (const i of items) this.sent.add(i.hash);
      await this.finish(m, m.items);
    });
  }

  private async finish(m: BatchManifest, names: string[]): Promise<void> {
    for (const n of names) {
      const item = this.item(n);
      if (item) await this.remove(item, this.opts.sentDir);
      await rm(this.at("results", `${n}.json`), { force: true });
    }
    await rm(this.at("batches", `${m.name}.json`), { force: true });
    const i = this.manifests.indexOf(m);
    if (i >= 0) this.manifests.splice(i, 1);
  }

  /** The API refused the batch for good (4xx): its items go to rejected/ with the answer, out of the backlog. */
  reject(m: BatchManifest, reason: unknown): Promise<void> {
    return this.serial(async () => {
      const dir = this.at("rejected", m.name);
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, "reason.json"), JSON.stringify({ manifest: m, reason }, null, 2));
      for (const n of m.items) {
        const item = this.item(n);
        if (!item) continue;
        await rename(this.at("items", n), path.join(dir, n));
        await this.remove(item);
        this.rejected += 1;
      }
      await this.finish(m, []);
    });
  }

  hasResult(item: SpoolItem): boolean {
    return this.resultNames.has(item.name);
  }

  async writeResult(item: SpoolItem, result: unknown): Promise<void> {
    await durableWrite(this.at("tmp"), this.at("results", `${item.name}.json`), JSON.stringify(result));
    this.resultNames.add(item.name);
    for (const wake of this.waiters.splice(0)) wake();
  }

  async readResult<T>(item: SpoolItem): Promise<T> {
    return JSON.parse(await readFile(this.at("results", `${item.name}.json`), "utf8")) as T;
  }

  /** Resolves when an item is accepted or classified, or after `ms`. */
  changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  stats() {
    const oldest = this.items[0];
    return {
      items: this.items.length,
      bytes: this.bytes,
      oldestAgeS: oldest ? Math.max(0, (Date.now() - Date.parse(oldest.acceptedAt)) / 1000) : 0,
    };
  }
}
