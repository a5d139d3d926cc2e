import { defineCommand } from "citty";
import { getRuntime } from "../context.ts";
import { idArg } from "../args.ts";

export default defineCommand({
  meta: { name: "start", description: "start the user process of a created container" },
  args: { ...idArg },
  async run({ args }) {
    await getRuntime().start(args._[0] as string);
  },
});
