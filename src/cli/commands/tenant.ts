import { defineCommand } from "citty";
import { DEFAULT_DB, formatBytes, ServerDb, type Quotas, type Tenant } from "../../db/db.ts";
import { NexcageError } from "../../core/errors.ts";
import { parseSize } from "../../server/units.ts";
import { out, str } from "../context.ts";

const USAGE = "tenant add|set|list|remove [NAME] [--max-sandboxes N --max-vcpus N --max-memory SIZE --max-disk SIZE --max-snapshots N]";

/** a quota flag: a number, a size, or `none` for unlimited */
function quotaFlags(args: Record<string, unknown>): Partial<Quotas> {
  const q: Partial<Quotas> = {};
  const count = (flag: string, key: keyof Quotas, integer: boolean) => {
    const v = str(args[flag]);
    if (v === undefined) return;
    if (v === "none") return void (q[key] = null);
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) throw new NexcageError("usage", `invalid --${flag} ${JSON.stringify(v)}: want a ${integer ? "whole " : ""}number >= 0, or none`);
    q[key] = n;
  };
  const size = (flag: string, key: keyof Quotas) => {
    const v = str(args[flag]);
    if (v === undefined) return;
    q[key] = v === "none" ? null : parseSize(v, `--${flag}`);
  };
  count("max-sandboxes", "maxSandboxes", true);
  count("max-vcpus", "maxVcpus", false);
  size("max-memory", "maxMemory");
  size("max-disk", "maxDisk");
  count("max-snapshots", "maxSnapshots", true);
  return q;
}

/** rows as aligned columns, the first row the header */
export function formatTable(rows: string[][]): string {
  const w = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] as string).length)) + 2) ?? [];
  return rows.map((r) => r.map((c, i) => (i < r.length - 1 ? c.padEnd(w[i] as number) : c)).join("")).join("\n") + "\n";
}

const show = (v: number | null, bytes = false) => (v === null ? "-" : bytes ? formatBytes(v) : String(v));

export default defineCommand({
  meta: { name: "tenant", description: `sandbox API tenants and their quotas: ${USAGE}` },
  args: {
    action: { type: "positional", required: true, description: "add, set, list or remove" },
    name: { type: "positional", required: false, description: "tenant name" },
    db: { type: "string", description: `the server's database (default ${DEFAULT_DB})` },
    "max-sandboxes": { type: "string", description: "sandboxes at once (none: unlimited)" },
    "max-vcpus": { type: "string", description: "vCPUs across its sandboxes" },
    "max-memory": { type: "string", description: "memory across its sandboxes (e.g. 8G)" },
    "max-disk": { type: "string", description: "disk across its sandboxes (e.g. 50G)" },
    "max-snapshots": { type: "string", description: "snapshots across its sandboxes" },
    format: { type: "string", alias: "f", description: "table or json (list)", default: "table" },
  },
  run({ args }) {
    const [action, name] = args._ as [string, string | undefined];
    const db = new ServerDb(str(args.db) ?? DEFAULT_DB);
    try {
      const needName = () => {
        if (!name) throw new NexcageError("usage", `tenant ${action} needs a name: nexcage tenant ${action} NAME`);
        return name;
      };
      const audit = (what: string, target: string) => db.audit({ tokenId: null, tenant: target, action: `cli tenant ${what}`, target, status: 200, result: "ok" });
      const line = (t: Tenant) => `tenant ${t.name}: sandboxes ${show(t.maxSandboxes)}, vcpus ${show(t.maxVcpus)}, memory ${show(t.maxMemory, true)}, disk ${show(t.maxDisk, true)}, snapshots ${show(t.maxSnapshots)}\n`;
      switch (action) {
        case "add": {
          const t = db.addTenant(needName(), quotaFlags(args));
          audit("add", t.name);
          return out(line(t));
        }
        case "set": {
          const t = db.setQuotas(needName(), quotaFlags(args));
          audit("set", t.name);
          return out(line(t));
        }
        case "remove": {
          db.removeTenant(needName());
          audit("remove", name as string);
          return out(`tenant ${name} removed\n`);
        }
        case "list": {
          const rows = db.tenants().map((t) => ({ ...t, usage: db.usage(t.id) }));
          if (args.format === "json") return out(`${JSON.stringify(rows)}\n`);
          const table = [
            ["NAME", "SANDBOXES", "VCPUS", "MEMORY", "DISK", "SNAPSHOTS"],
            ...rows.map((t) => [
              t.name,
              `${t.usage.sandboxes}/${show(t.maxSandboxes)}`,
              `${t.usage.vcpus}/${show(t.maxVcpus)}`,
              `${formatBytes(t.usage.memory)}/${show(t.maxMemory, true)}`,
              `${formatBytes(t.usage.disk)}/${show(t.maxDisk, true)}`,
              `${t.usage.snapshots}/${show(t.maxSnapshots)}`,
            ]),
          ];
          return out(formatTable(table));
        }
        default:
          throw new NexcageError("usage", `unknown tenant action ${JSON.stringify(action)}: ${USAGE}`);
      }
    } finally {
      db.close();
    }
  },
});
