import { defineCommand } from "citty";
import { getRuntime } from "../context.ts";
import { idArg } from "../args.ts";

export default defineCommand({
  meta: { name: "resume", description: "thaw a paused container" },
  args: { ...idArg },
  async run({ args }) {
    await getRuntime().resume(args._[0] as string);
  },
});
