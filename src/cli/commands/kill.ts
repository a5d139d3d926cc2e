import { defineCommand } from "citty";
import { getRuntime } from "../context.ts";
import { parseSignal } from "../../oci/signals.ts";
import { idArg } from "../args.ts";

export default defineCommand({
  meta: { name: "kill", description: "send a signal (default TERM) to the container's init, or with --all to every process" },
  args: {
    ...idArg,
    signal: { type: "positional", description: "signal name or number (TERM, SIGTERM, 15)", required: false },
    all: { type: "boolean", alias: "a", description: "send the signal to all processes in the container" },
  },
  async run({ args }) {
    await getRuntime().kill(args._[0] as string, parseSignal(args._[1]), args.all === true);
  },
});
