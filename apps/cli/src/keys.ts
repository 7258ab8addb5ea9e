import { parseArgs } from "node:util";
import { createApiKey, createDb, type DbOrTx, listApiKeys, migrate, revokeApiKey } from "@garbage/db";
import { UsageError } from "./options.js";

export const keysHelp = `usage: garbage keys create --name NAME [--sites a,b]
       garbage keys list [--json]
       garbage keys revoke <id>

Manages the API's keys in Postgres (DATABASE_URL). Only a key's sha256 is stored: create prints the key
once. Without --sites a key reaches every site. The API stops accepting a revoked key within a few seconds.`;

type Print = (line: string) => void;

/** `keys create`: the returned key is the only copy there will ever be. */
export async function createKeyCommand(db: DbOrTx, args: string[], print: Print): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { name: { type: "string" }, sites: { type: "string" } },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}\n\n${keysHelp}`);
  if (!values.name?.trim()) throw new UsageError(`--name is required\n\n${keysHelp}`);
  const sites = values.sites === undefined ? null : values.sites.split(",").map((s) => s.trim());
  if (sites?.every((s) => s.length === 0)) throw new UsageError("--sites names no site");
  const created = await createApiKey(db, { name: values.name, sites });
  print(created.key);
  console.error(
    `created key ${created.id} "${created.name}" for ${created.sites ? `sites ${created.sites.join(", ")}` : "every site"}; ` +
      "store it now, it cannot be shown again",
  );
  return 0;
}

export async function listKeysCommand(db: DbOrTx, args: string[], print: Print): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: "boolean" } } });
  const keys = await listApiKeys(db);
  if (values.json) {
    print(JSON.stringify(keys));
    return 0;
  }
  for (const k of keys) {
    const state = k.revokedAt ? `revoked ${k.revokedAt.toISOString()}` : "active";
    print([k.id, k.name, k.sites?.join("|") ?? "*", k.createdAt.toISOString(), state].join("\t"));
  }
  return 0;
}

export async function revokeKeyCommand(db: DbOrTx, args: string[], print: Print): Promise<number> {
  const [id, ...rest] = args;
  if (!id || rest.length > 0) throw new UsageError(`revoke takes one key id\n\n${keysHelp}`);
  if (!/^[0-9a-f-]{36}$/i.test(id)) throw new UsageError(`not a key id: ${id}`);
  if (!(await revokeApiKey(db, id))) {
    console.error(`garbage: no active key ${id}`);
    return 1;
  }
  print(`revoked ${id}`);
  return 0;
}

const SUBCOMMANDS = { create: createKeyCommand, list: listKeysCommand, revoke: revokeKeyCommand };

export async function keysCommand(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "help" || sub === "--help" || sub === "-h") {
    console.log(keysHelp);
    return sub === undefined ? 2 : 0;
  }
  const command = SUBCOMMANDS[sub as keyof typeof SUBCOMMANDS];
  if (!command) throw new UsageError(`unknown keys command '${sub}'\n\n${keysHelp}`);
  if (!env.DATABASE_URL) throw new UsageError("DATABASE_URL is not set");
  // Two connections: migrate holds one for its advisory lock while the migrator runs on the other.
  const handle = createDb(env.DATABASE_URL, { max: 2 });
  try {
    // The same migrations the API applies at start, so keys can be made before its first run.
    await migrate(handle.db);
    return await command(handle.db, rest, (line) => console.log(line));
  } finally {
    await handle.close();
  }
}
