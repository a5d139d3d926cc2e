import { defineCommand } from "citty";
import { NexcageError } from "../../core/errors.ts";
import { readJsonFile } from "../../core/validate.ts";
import { Runtime } from "../../runtime.ts";
import { getRuntime, str } from "../context.ts";
import { idArg } from "../args.ts";

export default defineCommand({
  meta: { name: "update", description: "update a container's resource limits from a linux.resources JSON document" },
  args: {
    ...idArg,
    resources: { type: "string", alias: "r", description: "path to a resources JSON file, or - for stdin" },
  },
  async run({ args }) {
    const src = str(args.resources);
    if (!src) throw new NexcageError("usage", "update: --resources FILE|- is required");
    const doc = src === "-" ? Runtime.parseResourcesText(await Bun.stdin.text()) : await readJsonFile(src, "cannot load resources");
    await getRuntime().update(args._[0] as string, doc);
  },
});
