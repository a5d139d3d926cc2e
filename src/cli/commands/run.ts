import { defineCommand } from "citty";
import { getRuntime } from "../context.ts";
import { createArgs, createArgsFrom } from "./create.ts";

export default defineCommand({
  meta: { name: "run", description: "create and start a container; without --detach, wait and return its exit code" },
  args: {
    ...createArgs,
    detach: { type: "boolean", alias: "d", description: "do not wait for the container" },
    keep: { type: "boolean", description: "do not delete the container after it exits (foreground run)" },
    "no-subreaper": { type: "boolean", description: "accepted for runc compatibility; nexcage needs a subreaper to report the exit status" },
  },
  async run({ args }) {
    return getRuntime().run({ ...createArgsFrom(args, args._[0] as string), detach: args.detach === true, keep: args.keep === true });
  },
});
