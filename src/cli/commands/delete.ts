import { defineCommand } from "citty";
import { getRuntime } from "../context.ts";
import { idArg } from "../args.ts";

export default defineCommand({
  meta: { name: "delete", description: "delete a stopped (or, with --force, any) container" },
  args: {
    ...idArg,
    force: { type: "boolean", alias: "f", description: "kill a running container first; no error if it does not exist" },
  },
  async run({ args }) {
    await getRuntime().delete(args._[0] as string, args.force === true);
  },
});
