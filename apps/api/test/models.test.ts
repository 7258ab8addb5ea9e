import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createBatch, recordResults, recordShadowResults, writeReview } from "@garbage/db";
import { writeTinySiteModel } from "@garbage/models/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { form, type Harness, json, openHarness, type TestApp } from "./helpers";
import { bearer, sites, uiApp } from "./ui-helpers";

let h: Harness;
let t: TestApp;
let dir: string;
const created: string[] = [];
const touched: string[] = [];
beforeAll(async () => {
  h = await openHarness();
  dir = await mkdtemp(path.join(tmpdir(), "garbage-api-models-"));
});
afterEach(async () => {
  await t?.dispose();
});
afterAll(async () => {
  // Assignments are global: leave none behind for other suites' workers.
  await h?.db.pool.query("delete from model_assignments where site = any($1)", [touched]);
  await h?.db.pool.query("delete from model_versions where id = any($1)", [created]);
  await h?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

type Row = { id: string; modelVersion: string; state: string; sites: string[] | null };

/** The multipart body `garbage models add` and the Model page send, from a fixture's files. */
async function modelForm(sitesField?: string, o: { int8?: boolean; tamper?: boolean } = {}) {
  const out = await mkdtemp(path.join(dir, "m-"));
  const name = `api-${randomBytes(4).toString("hex")}`;
  const m = await writeTinySiteModel(out, { name, int8: o.int8 });
  const file = (f: string) => readFile(path.join(out, f));
  const parts = [
    {
      name: "model",
      data: o.tamper ? Buffer.from("not it") : await file(`${name}.onnx`),
      filename: `${name}.onnx`,
    },
    { name: "manifest", data: await file(`${name}.json`), filename: `${name}.json` },
    { name: "reference", data: await file(`${name}.references.bin`), filename: "r.bin" },
  ];
  if (o.int8 !== false) {
    parts.push({ name: "int8", data: await file(`${name}-int8.onnx`), filename: "a" });
    parts.push({ name: "int8Manifest", data: await file(`${name}-int8.json`), filename: "b" });
  }
  return { m, body: form(parts, sitesField === undefined ? {} : { sites: sitesField }) };
}

async function add(key: string, sitesField?: string): Promise<Row> {
  const { body } = await modelForm(sitesField);
  const res = await t.app.request("/v1/models", { method: "POST", headers: bearer(key), body });
  expect(res.status, await res.clone().text()).toBe(201);
  const row = await json<Row>(res);
  created.push(row.id);
  return row;
}

const post = (path: string, key: string, body: unknown) =>
  t.app.request(path, {
    method: "POST",
    headers: { ...bearer(key), "content-type": "application/json" },
    body: JSON.stringify(body),
  });

/** n reviewed images of `site` that the default got right or wrong, and the candidate's shadow predictions. */
async function evidence(site: string, candidateId: string, n: number, candidateBetter: boolean) {
  const images = Array.from({ length: n }, (_, index) => ({
    index,
    storageKey: `m/${randomUUID()}`,
    bytes: 1,
  }));
  const ids = (await createBatch(h.db.db, { site, images })).images.map((i) => i.id);
  const served = candidateBetter ? "glass" : "metal";
  await recordResults(
    h.db.db,
    ids.map((imageId) => ({
      imageId,
      status: "ok" as const,
      label: served,
      confidence: 0.9,
      modelVersion: "shipped@t",
    })),
  );
  for (const imageId of ids)
    await writeReview(h.db.db, { imageId, label: "metal", reviewer: "t", sites: null });
  const label = candidateBetter ? "metal" : "glass";
  await recordShadowResults(
    h.db.db,
    ids.map((imageId) => ({
      imageId,
      versionId: candidateId,
      source: "reviewed" as const,
      label,
      confidence: 0.8,
      top: [],
    })),
  );
}

describe("/v1/models", () => {
  it("registers an upload, scopes what site keys see, and refuses writes from them", async () => {
    const { north, south, apiKeys } = sites();
    t = await uiApp(h, { apiKeys });
    const forNorth = await add("root", north);
    const everywhere = await add("root", "*");
    expect(forNorth).toMatchObject({
      state: "candidate",
      sites: [north],
      int8: true,
      createdBy: expect.any(String),
    });
    expect(everywhere.sites).toBeNull();

    const list = async (key: string) =>
      json<{ default: string; versions: Row[] }>(await t.app.request("/v1/models", { headers: bearer(key) }));
    expect((await list("alpha")).default).toBe("ui-tiny@ui-1");
    expect((await list("alpha")).versions.map((v) => v.id)).toEqual(
      expect.arrayContaining([forNorth.id, everywhere.id]),
    );
    expect((await list("beta")).versions.map((v) => v.id)).not.toContain(forNorth.id);
    expect(
      (await t.app.request(`/v1/models/${forNorth.modelVersion}`, { headers: bearer("beta") })).status,
    ).toBe(404);
    const detail = await t.app.request(`/v1/models/${forNorth.modelVersion}`, { headers: bearer("alpha") });
    expect(await json(detail)).toMatchObject({ id: forNorth.id, manifest: { site: { source: "test" } } });

    const { body } = await modelForm(south);
    const refused = await t.app.request("/v1/models", { method: "POST", headers: bearer("beta"), body });
    expect(refused.status).toBe(403);
    expect((await post(`/v1/models/${forNorth.id}/shadow`, "alpha", {})).status).toBe(403);
    expect((await post("/v1/models/rollback", "alpha", { sites: [north] })).status).toBe(403);
  });

  it("answers bad uploads with 4xx JSON", async () => {
    t = await uiApp(h, { modelMaxBytes: 500 });
    const send = (body: FormData | string, headers: Record<string, string> = {}) =>
      t.app.request("/v1/models", { method: "POST", body, headers });
    const big = await modelForm(undefined, { int8: false });
    expect(await json(await send(big.body))).toMatchObject({ code: "request_too_large" });
    t = await uiApp(h);
    expect((await send("{}", { "content-type": "application/json" })).status).toBe(415);
    const onlyModel = form([{ name: "model", data: Buffer.from("x"), filename: "m.onnx" }]);
    expect(await json(await send(onlyModel))).toMatchObject({ code: "missing_part" });
    const odd = form([{ name: "weights", data: Buffer.from("x"), filename: "m.onnx" }]);
    expect(await json(await send(odd))).toMatchObject({ code: "unexpected_field" });
    const tampered = await modelForm(undefined, { tamper: true });
    expect(await json(await send(tampered.body))).toMatchObject({ code: "checksum_mismatch" });
    const ok = await modelForm();
    const first = await json<Row>(await send(ok.body));
    created.push(first.id);
    const again = await send((await modelFormFrom(ok.m.modelPath)).body);
    expect(again.status).toBe(409);
    expect(await json(again)).toMatchObject({ code: "duplicate_version" });
  });

  it("shadows, refuses promotion without evidence or when worse, promotes per site, rolls back", async () => {
    const { north, south, apiKeys } = sites();
    touched.push(north, south);
    t = await uiApp(h, { apiKeys });
    const v = await add("root", `${north},${south}`);
    expect(await json(await post(`/v1/models/${v.id}/shadow`, "root", { on: true }))).toMatchObject({
      state: "shadow",
    });

    const none = await post(`/v1/models/${v.id}/promote`, "root", { sites: [north] });
    expect(none.status).toBe(409);
    expect(await json(none)).toMatchObject({
      code: "no_evidence",
      details: { comparison: { reviewed: { images: 0 } } },
    });

    await evidence(south, v.id, 3, false);
    const worse = await post(`/v1/models/${v.id}/promote`, "root", { sites: [south] });
    expect(await json(worse)).toMatchObject({ code: "candidate_worse" });
    const compare = await t.app.request(`/v1/models/${v.id}/compare?site=${south}`, {
      headers: bearer("beta"),
    });
    expect(await json(compare)).toMatchObject({
      site: south,
      reviewed: { images: 3, candidate: { correct: 0 } },
    });

    await evidence(north, v.id, 3, true);
    const promoted = await post(`/v1/models/${v.id}/promote`, "root", { sites: [north] });
    expect(promoted.status).toBe(200);
    expect(await json(promoted)).toMatchObject({
      version: { state: "active" },
      changes: [{ site: north, from: null }],
      forced: false,
    });
    const forced = await post(`/v1/models/${v.id}/promote`, "root", { sites: [south], force: true });
    expect(await json(forced)).toMatchObject({ forced: true, changes: [{ site: south }] });
    const out = await post(`/v1/models/${v.id}/promote`, "root", { sites: ["elsewhere"], force: true });
    expect(await json(out)).toMatchObject({ code: "out_of_scope" });

    const reg = await json<{ assignments: { site: string; versionId: string }[] }>(
      await t.app.request("/v1/models", { headers: bearer("alpha") }),
    );
    expect(reg.assignments.filter((a) => a.site === north || a.site === south)).toEqual([
      expect.objectContaining({ site: north, versionId: v.id }),
    ]);

    const back = await post("/v1/models/rollback", "root", { sites: [north, south] });
    expect(await json(back)).toMatchObject({ retired: [{ id: v.id }] });
    expect(await json(await post("/v1/models/rollback", "root", { sites: [north] }))).toMatchObject({
      code: "not_assigned",
    });
    expect((await post("/v1/models/rollback", "root", { sites: [] })).status).toBe(400);
    expect((await post(`/v1/models/${randomUUID()}/shadow`, "root", {})).status).toBe(404);
  });
});

/** The same files again (a second upload of one version). */
async function modelFormFrom(modelPath: string) {
  const base = modelPath.replace(/\.onnx$/, "");
  const parts = [
    { name: "model", data: await readFile(`${base}.onnx`), filename: "m.onnx" },
    { name: "manifest", data: await readFile(`${base}.json`), filename: "m.json" },
    { name: "reference", data: await readFile(`${base}.references.bin`), filename: "r.bin" },
  ];
  return { body: form(parts) };
}
