import { execFile } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { createDb, type DbHandle, ensureDatabase, migrate } from "@garbage/db";
import { writeTinySiteModel } from "@garbage/models/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { modelsCommand } from "../src/models";
import { UsageError } from "../src/options";

const DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/garbage_test";
let handle: DbHandle;
let dir: string;
let env: NodeJS.ProcessEnv;
const sites = [`cli-north-${randomUUID()}`, `cli-south-${randomUUID()}`];
const names: string[] = [];

beforeAll(async () => {
  await ensureDatabase(DATABASE_URL);
  handle = createDb(DATABASE_URL, { max: 2 });
  await migrate(handle.db);
  dir = await mkdtemp(path.join(tmpdir(), "cli-models-"));
  env = { DATABASE_URL, STORAGE_URL: pathToFileURL(path.join(dir, "store")).href, USER: "ada" };
});
afterAll(async () => {
  // Assignments are global: leave none behind for other suites' workers.
  await handle?.pool.query("delete from model_assignments where site = any($1)", [sites]);
  await handle?.pool.query("delete from model_versions where name = any($1)", [names]);
  await handle?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Runs `garbage models ...` in-process; returns the exit code and what it printed on stdout. */
async function models(...argv: string[]): Promise<{ code: number; out: string[] }> {
  const out: string[] = [];
  const code = await modelsCommand(argv, env, (line) => out.push(line));
  return { code, out };
}

describe("garbage models", () => {
  it("adds, lists, shadows, compares, promotes (refused without evidence unless forced) and rolls back", async () => {
    const name = `cli-${randomBytes(4).toString("hex")}`;
    names.push(name);
    const m = await writeTinySiteModel(dir, { name, sites });
    const added = await models("add", m.modelPath);
    expect(added.code).toBe(0);
    const [id, modelVersion] = (added.out[0] as string).split("\t");
    expect(modelVersion).toBe(`${name}@1`);

    const listed = JSON.parse((await models("list", "--json")).out[0] as string);
    expect(listed.versions).toContainEqual(
      expect.objectContaining({ id, state: "candidate", sites, createdBy: "ada" }),
    );
    expect((await models("list")).out.find((l) => l.startsWith(`${id}\t`))).toContain("\tcandidate\t");

    expect((await models("shadow", `${name}@1`)).out).toEqual([`${name}@1\tshadow`]);
    const compared = JSON.parse(
      (await models("compare", id as string, "--site", sites[0] as string, "--json")).out[0] as string,
    );
    expect(compared).toMatchObject({ candidate: `${name}@1`, site: sites[0], reviewed: { images: 0 } });

    expect((await models("promote", id as string, "--sites", sites[0] as string)).code).toBe(1);
    const forced = await models("promote", id as string, "--sites", sites[0] as string, "--force");
    expect(forced).toEqual({ code: 0, out: [`${sites[0]}\t- -> ${name}@1`] });
    const back = await models("rollback", "--site", sites[0] as string);
    expect(back).toEqual({ code: 0, out: [`${sites[0]}\t${name}@1 -> -`] });
    await expect(models("rollback", "--site", sites[0] as string)).rejects.toMatchObject({
      code: "not_assigned",
    });
    await expect(models("add", m.modelPath)).rejects.toMatchObject({ code: "duplicate" });
  });

  it("answers bad usage with a UsageError, and the CLI exits 2", async () => {
    await expect(models("promote")).rejects.toThrow(UsageError);
    await expect(models("rollback")).rejects.toThrow(/--site S or --all/);
    await expect(models("add", "model.json")).rejects.toThrow(UsageError);
    await expect(models("bogus")).rejects.toThrow(/unknown models command/);
    await expect(modelsCommand(["list"], {})).rejects.toThrow(/DATABASE_URL/);

    const main = path.resolve(import.meta.dirname, "../src/main.ts");
    const run = promisify(execFile);
    const failed = await run(process.execPath, ["--import", "tsx", main, "models", "shadow"], {
      env: { ...process.env, ...env },
    }).catch((err: { code: number; stderr: string }) => err);
    expect(failed).toMatchObject({ code: 2, stderr: expect.stringContaining("usage: garbage models add") });
  });
});
