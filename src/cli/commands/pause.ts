import { defineCommand } from "citty";
import { getRuntime } from "../context.ts";
import { idArg } from "../args.ts";

export default defineCommand({
  meta: { name: "pause", description: "freeze every process of a running container" },
  args: { ...idArg },
  async run({ args }) {
    await getRuntime().pause(args._[0] as string);
  },
});
