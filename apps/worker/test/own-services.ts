/**
 * Private Redis and Postgres processes for tests that must crash or stop them, and scratch databases for tests
 * whose workers sweep: the machine's own servers are shared and never stopped, and a sweep on the shared test
 * database would adopt every other suite's unfinished batches.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { createDb, type DbHandle, dropDatabase, ensureDatabase, migrate } from "@garbage/db";
import { Redis } from "ioredis";
import { TEST_DATABASE_URL, waitFor } from "./helpers";

const run = promisify(execFile);

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface OwnRedis {
  url: string;
  /**
   * SIGKILL, as in a crash: without persistence everything in memory is gone; with it, what the append-only
   * file had at the last fsync (once a second) comes back on start.
   */
  kill(): Promise<void>;
  /** Starts the server again on the same port: empty, or from its append-only file. */
  start(): Promise<void>;
  /** Kills the server and removes its data directory. */
  destroy(): Promise<void>;
}

export interface OwnRedisOptions {
  /** appendonly yes, appendfsync everysec (Redis' own default for AOF) in a temp directory. */
  persistence?: boolean;
}

export async function startOwnRedis(options: OwnRedisOptions = {}): Promise<OwnRedis> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const dir = await mkdtemp(path.join(tmpdir(), "own-redis-"));
  const persistence = options.persistence
    ? ["--appendonly", "yes", "--appendfsync", "everysec"]
    : ["--appendonly", "no"];
  let child: ChildProcess | undefined;
  const start = async () => {
    const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", ...persistence];
    child = spawn("redis-server", [...args, "--maxmemory-policy", "noeviction"], { stdio: "ignore" });
    // A server loading its append-only file answers LOADING until it is done: ready means PING works.
    await waitFor("own redis", () => pingOnce(url), 10_000, 50);
  };
  const kill = async () => {
    const victim = child;
    if (!victim || victim.exitCode !== null) return;
    const exited = new Promise((resolve) => victim.once("exit", resolve));
    victim.kill("SIGKILL");
    await exited;
  };
  await start();
  return {
    url,
    kill,
    start,
    destroy: async () => {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function pingOnce(url: string): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on("error", () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

export interface OwnPostgres {
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

const pgBin = () => {
  const root = "/usr/lib/postgresql";
  const version = existsSync(root) ? readdirSync(root).sort().at(-1) : undefined;
  const bin = version ? path.join(root, version, "bin") : undefined;
  return bin && existsSync(path.join(bin, "initdb")) ? bin : undefined;
};

/** Why a private cluster cannot be made here, or undefined when it can. */
export function ownPostgresUnavailable(): string | undefined {
  if (!pgBin()) return "no /usr/lib/postgresql/*/bin/initdb";
  if (process.getuid?.() === 0 && !existsSync("/usr/sbin/runuser") && !existsSync("/sbin/runuser")) {
    return "running as root without runuser (postgres refuses to run as root)";
  }
  return undefined;
}

/** initdb + pg_ctl into a temp dir, as the postgres user when the tests run as root. */
export async function startOwnPostgres(): Promise<OwnPostgres> {
  const bin = pgBin() as string;
  const root = process.getuid?.() === 0;
  const dir = await mkdtemp(path.join(tmpdir(), "own-pg-"));
  if (root) await chown(dir, ...(await postgresIds()));
  const data = path.join(dir, "data");
  const port = await freePort();
  const as = (cmd: string, args: string[]) =>
    root
      ? run("runuser", ["-u", "postgres", "--", path.join(bin, cmd), ...args])
      : run(path.join(bin, cmd), args);
  await as("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`;
  const start = async () => {
    await as("pg_ctl", ["-D", data, "-o", opts, "-l", path.join(dir, "log"), "-w", "-t", "30", "start"]);
  };
  // Immediate: the server goes away the way a crash or a network cut looks to its clients.
  const stop = async () => {
    await as("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]).catch(() => {});
  };
  await start();
  const url = `postgres://postgres@127.0.0.1:${port}/garbage`;
  await ensureDatabase(url);
  return {
    url,
    start,
    stop,
    destroy: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function postgresIds(): Promise<[number, number]> {
  const [uid, gid] = await Promise.all([run("id", ["-u", "postgres"]), run("id", ["-g", "postgres"])]);
  return [Number(uid.stdout.trim()), Number(gid.stdout.trim())];
}

export interface ScratchDb {
  url: string;
  handle: DbHandle;
  drop(): Promise<void>;
}

/** A migrated database of its own on the shared server, named after TEST_DATABASE_URL's, dropped afterwards. */
export async function createScratchDb(): Promise<ScratchDb> {
  const url = new URL(TEST_DATABASE_URL);
  const name = `${url.pathname.slice(1)}_${randomBytes(4).toString("hex")}`;
  url.pathname = `/${name}`;
  await ensureDatabase(url.href);
  const handle = createDb(url.href, { max: 4 });
  await migrate(handle.db);
  return {
    url: url.href,
    handle,
    drop: async () => {
      await handle.close();
      await dropDatabase(url.href);
    },
  };
}
