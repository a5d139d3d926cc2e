import { defineCommand } from "citty";
import { getRuntime } from "../context.ts";

export default defineCommand({
  meta: { name: "pause", description: "freeze every process of a running container" },
  args: { id: { type: "positional", description: "container id", required: true } },
  async run({ args }) {
    await getRuntime().pause(args._[0] as string);
  },
});
