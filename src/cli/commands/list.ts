import { defineCommand } from "citty";
import { UNMANAGED_ANNOTATION } from "../../backends/lxc/unmanaged.ts";
import { NexcageError } from "../../core/errors.ts";
import { getRuntime, out } from "../context.ts";

export default defineCommand({
  meta: { name: "list", description: "list containers (json: an array of state objects)" },
  args: {
    format: { type: "string", alias: "f", description: "table or json", default: "table" },
    quiet: { type: "boolean", alias: "q", description: "print only the ids" },
  },
  async run({ args }) {
    const states = await getRuntime().list();
    if (args.quiet === true) return out(states.map((s) => `${s.id}\n`).join(""));
    // runc encodes a nil slice: `null` when there is nothing
    if (args.format === "json") return out(`${states.length ? JSON.stringify(states) : "null"}\n`);
    if (args.format !== "table") throw new NexcageError("usage", `invalid format option ${JSON.stringify(args.format)}`);
    // plain LXC containers: the bundle column says so
    const bundle = (s: (typeof states)[number]) => (s.annotations?.[UNMANAGED_ANNOTATION] ? `lxc:${s.bundle}` : s.bundle);
    const rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"], ...states.map((s) => [s.id, String(s.pid), s.status, bundle(s), s.created, s.owner])];
    out(tabwrite(rows));
  },
});

/** Go's tabwriter as runc sets it up (minwidth 12, padding 3); the last column is not padded. */
export function tabwrite(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.slice(0, -1).forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 12, c.length + 3)));
  return rows.map((r) => r.map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i] ?? 12) : c)).join("") + "\n").join("");
}
