/**
 * The agent on its own (the Docker image's entry, `apps/cli/dist/agent.js`): the same as `garbage agent`,
 * without the CLI's other commands and their dependencies (Postgres, storage).
 */
import { AgentUsageError, agentMain } from "./agent";

agentMain(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const usage =
      err instanceof AgentUsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    console.error(`garbage agent: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = usage ? 2 : 1;
  },
);
