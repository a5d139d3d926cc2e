import { defineCommand } from "citty";
import { getRuntime } from "../context.ts";
import { createArgs, createArgsFrom } from "./create.ts";

export default defineCommand({
  meta: { name: "run", description: "create and start a container; without --detach, wait and return its exit code" },
  args: {
    ...createArgs,
    detach: { type: "boolean", alias: "d", description: "do not wait for the container" },
  },
  async run({ args }) {
    return getRuntime().run({ ...createArgsFrom(args, args._[0] as string), detach: args.detach === true });
  },
});
