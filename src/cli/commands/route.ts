import { defineCommand } from "citty";
import { resolve } from "node:path";
import { NexcageError } from "../../core/errors.ts";
import { loadSpec } from "../../oci/spec.ts";
import { getRuntime, out, str } from "../context.ts";
import { idArg } from "../args.ts";

export default defineCommand({
  meta: { name: "route", description: "explain which backend a container id (and bundle) would be routed to, and why" },
  args: {
    ...idArg,
    bundle: { type: "string", alias: "b", description: "bundle whose config.json annotations take part in routing" },
    format: { type: "string", alias: "f", description: "text or json", default: "text" },
  },
  async run({ args }) {
    const rt = getRuntime();
    const bundle = str(args.bundle);
    const annotations = bundle ? ((await loadSpec(resolve(bundle))).annotations ?? {}) : {};
    const d = await rt.route(args._[0] as string, annotations, { probe: true });
    const config = (await rt.getConfig()).source;
    if (args.format === "json") return out(`${JSON.stringify({ id: args._[0], backend: d.backend, by: d.by, reason: d.reason, config, ...(d.rule ? { rule: d.rule } : {}), ...(d.fallbackFrom ? { fallbackFrom: d.fallbackFrom } : {}), ...(d.problems ? { problems: d.problems } : {}) }, null, 2)}\n`);
    if (args.format !== "text") throw new NexcageError("usage", `invalid format option ${JSON.stringify(args.format)}`);
    const problems = d.problems && !d.fallbackFrom ? `warning: ${d.backend} cannot work on this host: ${d.problems.join("; ")}\n` : "";
    out(`backend: ${d.backend}\nreason:  ${d.reason}\nconfig:  ${config}\n${problems}`);
  },
});
