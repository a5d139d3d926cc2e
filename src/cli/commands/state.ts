import { defineCommand } from "citty";
import { getRuntime, out } from "../context.ts";

export default defineCommand({
  meta: { name: "state", description: "print the OCI state of a container as JSON" },
  args: { id: { type: "positional", description: "container id", required: true } },
  async run({ args }) {
    // runc prints this with two-space indentation and no trailing newline
    out(JSON.stringify(await getRuntime().state(args._[0] as string), null, 2));
  },
});
