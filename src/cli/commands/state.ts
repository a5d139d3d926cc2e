import { defineCommand } from "citty";
import { getRuntime, out } from "../context.ts";
import { idArg } from "../args.ts";

export default defineCommand({
  meta: { name: "state", description: "print the OCI state of a container as JSON" },
  args: { ...idArg },
  async run({ args }) {
    // runc prints this with two-space indentation and no trailing newline
    out(JSON.stringify(await getRuntime().state(args._[0] as string), null, 2));
  },
});
