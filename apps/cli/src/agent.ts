import { AgentUsageError, agentHelp, agentMain } from "@garbage/agent";
import { UsageError } from "./options.js";

export const agentHelpText = agentHelp;

/** `garbage agent`: the camera agent of @garbage/agent; relative paths are the caller's (INIT_CWD). */
export async function agentCommand(argv: string[]): Promise<number> {
  try {
    return await agentMain(argv, process.env, process.env.INIT_CWD ?? process.cwd());
  } catch (err) {
    if (err instanceof AgentUsageError) throw new UsageError(err.message);
    throw err;
  }
}
