import { agentCommand, agentHelpText } from "./agent.js";
import { classifyCommand, classifyHelp } from "./classify.js";
import { evalCommand, evalHelp } from "./eval.js";
import { exportReviewedCommand, exportReviewedHelp } from "./export-reviewed.js";
import { keysCommand, keysHelp } from "./keys.js";
import { modelsCommand, modelsHelp } from "./models.js";
import { UsageError } from "./options.js";

const help = `garbage: classify photos of waste with the shipped ResNet50 model, manage the API's keys, and export
reviewed images as training data, and run the camera agent

${classifyHelp}

${evalHelp}

${keysHelp}

${exportReviewedHelp}

${modelsHelp}

${agentHelpText}`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "classify":
      return classifyCommand(rest);
    case "eval":
      return evalCommand(rest);
    case "keys":
      return keysCommand(rest);
    case "export-reviewed":
      return exportReviewedCommand(rest);
    case "models":
      return modelsCommand(rest);
    case "agent":
      return agentCommand(rest);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(help);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command '${command}'\n\n${help}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    console.error(`garbage: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = usage ? 2 : 1;
  },
);
