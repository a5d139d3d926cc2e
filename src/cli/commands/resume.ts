import { defineCommand } from "citty";
import { getRuntime } from "../context.ts";

export default defineCommand({
  meta: { name: "resume", description: "thaw a paused container" },
  args: { id: { type: "positional", description: "container id", required: true } },
  async run({ args }) {
    await getRuntime().resume(args._[0] as string);
  },
});
