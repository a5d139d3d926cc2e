import { defineCommand } from "citty";
import { getRuntime } from "../context.ts";

export default defineCommand({
  meta: { name: "start", description: "start the user process of a created container" },
  args: { id: { type: "positional", description: "container id", required: true } },
  async run({ args }) {
    await getRuntime().start(args._[0] as string);
  },
});
