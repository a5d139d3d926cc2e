import { defineCommand } from "citty";
import { idArg, processIoArgs } from "../args.ts";
import { getRuntime, int, str } from "../context.ts";

export const createArgs = {
  ...idArg,
  bundle: { type: "string", alias: "b", description: "path to the OCI bundle (default: current directory)" },
  ...processIoArgs,
  "no-pivot": { type: "boolean", description: "do not use pivot_root to jail the process" },
  "no-new-keyring": { type: "boolean", description: "do not create a new session keyring" },
  "notify-socket": { type: "string", description: "accepted for compatibility" },
} as const;

export function createArgsFrom(args: Record<string, unknown>, id: string) {
  return {
    id,
    ...(str(args.bundle) ? { bundle: str(args.bundle) as string } : {}),
    ...(str(args["pid-file"]) ? { pidFile: str(args["pid-file"]) as string } : {}),
    ...(str(args["console-socket"]) ? { consoleSocket: str(args["console-socket"]) as string } : {}),
    preserveFds: int(args["preserve-fds"], "preserve-fds"),
    noPivot: args["no-pivot"] === true,
    noNewKeyring: args["no-new-keyring"] === true,
  };
}

export default defineCommand({
  meta: { name: "create", description: "create a container (its process waits for `start`)" },
  args: createArgs,
  async run({ args }) {
    await getRuntime().create(createArgsFrom(args, args._[0] as string));
  },
});
