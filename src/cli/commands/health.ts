import { defineCommand } from "citty";
import { getBackend, implementedBackends } from "../../backends/index.ts";
import { BACKEND_NAMES, type ProbeResult } from "../../backends/types.ts";
import { NexcageError } from "../../core/errors.ts";
import { getRuntime, out } from "../context.ts";

export default defineCommand({
  meta: { name: "health", alias: "doctor", description: "per backend: can it work on this host, and if not, why and how to fix it" },
  args: { format: { type: "string", alias: "f", description: "table or json", default: "table" } },
  async run({ args }) {
    const rt = getRuntime();
    await rt.getConfig().catch(() => undefined); // probes read backend settings from it
    const results: ProbeResult[] = [];
    for (const name of BACKEND_NAMES) {
      if (!implementedBackends().includes(name)) {
        results.push({ backend: name, ok: false, problems: ["not available in this build"], details: {} });
        continue;
      }
      results.push(await (await getBackend(name)).probe(rt.context(name)));
    }
    const config = await rt.getConfig().then((c) => c.source, (e: Error) => `invalid: ${e.message}`);
    // CNI networking: plugins and tools, and CNI CHECK of every attached container
    const network = await (await rt.network()).health();
    if (args.format === "json") {
      out(`${JSON.stringify({ root: rt.root, config, backends: results, network }, null, 2)}\n`);
    } else if (args.format === "table") {
      let text = `root: ${rt.root}\nconfig: ${config}\n\n`;
      for (const r of results) {
        const details = Object.entries(r.details).map(([k, v]) => `${k}=${v}`).join(" ");
        text += `${r.backend.padEnd(12)} ${r.ok ? "ok  " : "FAIL"} ${details}\n`;
        for (const p of r.problems) text += `${"".padEnd(17)}- ${p}\n`;
      }
      const nd = Object.entries(network.details).map(([k, v]) => `${k}=${v}`).join(" ");
      text += `${"network".padEnd(12)} ${network.ok ? "ok  " : "FAIL"} ${nd}\n`;
      for (const c of network.containers) text += `${"".padEnd(17)}${c.id} (${c.network}${c.ips ? ` ${c.ips.join(",")}` : ""}): ${c.check}\n`;
      for (const p of network.problems.filter((p) => !p.startsWith("container "))) text += `${"".padEnd(17)}- ${p}\n`;
      out(text);
    } else throw new NexcageError("usage", `invalid format option ${JSON.stringify(args.format)}`);
    // usable when the default backend works; the exit status lets scripts gate on it
    const def = (await rt.getConfig().catch(() => undefined))?.defaultBackend ?? "crun";
    return results.find((r) => r.backend === def)?.ok ? 0 : 8;
  },
});
