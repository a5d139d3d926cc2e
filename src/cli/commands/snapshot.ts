import { defineCommand } from "citty";
import { NexcageError } from "../../core/errors.ts";
import type { SnapshotMeta } from "../../snapshot/service.ts";
import { getRuntime, out } from "../context.ts";

const USAGE = "snapshot create|list|restore|delete|verify|prune|export|import ID [NAME]";

/** the metadata without the per-file manifest (list/create output) */
const brief = ({ manifest: _m, ...rest }: SnapshotMeta) => rest;
const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

export default defineCommand({
  meta: { name: "snapshot", description: `filesystem snapshots with SHA-256 manifests: ${USAGE}` },
  args: {
    action: { type: "positional", required: true, description: "create, list, restore, delete, verify, prune, export or import" },
    id: { type: "positional", required: true, description: "container id" },
    name: { type: "positional", required: false, description: "snapshot name (create: default snap-<time>)" },
    format: { type: "string", alias: "f", description: "table or json (create, list, verify)", default: "table" },
    force: { type: "boolean", description: "restore: stop a running container, restore, restart it" },
    verify: { type: "boolean", description: "restore: re-hash the restored rootfs against the manifest" },
    "keep-last": { type: "string", description: "prune: keep the newest N" },
    "max-age": { type: "string", description: "prune: keep what is younger than this (7d, 12h, 30m)" },
    "dry-run": { type: "boolean", description: "prune: only say what would go" },
    output: { type: "string", alias: "o", description: "export: file to write (default: stdout)" },
    input: { type: "string", alias: "i", description: "import: file to read (default: stdin)" },
    parent: { type: "string", description: "export: incremental against this snapshot" },
  },
  async run({ args }) {
    const rt = getRuntime();
    const snaps = await rt.snapshots();
    const [action, id, name] = args._ as [string, string, string | undefined];
    const json = args.format === "json";
    if (!["table", "json"].includes(String(args.format))) throw new NexcageError("usage", `invalid format option ${JSON.stringify(args.format)}`);
    const needName = () => {
      if (!name) throw new NexcageError("usage", `snapshot ${action} needs a snapshot name: nexcage snapshot ${action} ${id} NAME`);
      return name;
    };
    switch (action) {
      case "create": {
        const cfg = (await rt.getConfig()).snapshots;
        const m = await snaps.create(id, name, cfg.maxPerContainer ? { maxPerContainer: cfg.maxPerContainer } : {});
        return out(json ? `${JSON.stringify(brief(m))}\n` : `snapshot ${m.name} of ${id}: ${m.driver}, ${m.files} files, ${mib(m.bytes)}, frozen ${m.frozenMs.toFixed(1)} ms\n`);
      }
      case "list": {
        const list = await snaps.listFor(id);
        if (json) return out(`${JSON.stringify(list.map(brief))}\n`);
        const rows = [["NAME", "CREATED", "DRIVER", "FILES", "SIZE", "PARENT"], ...list.map((s) => [s.name, s.created, s.driver, String(s.files), mib(s.bytes), s.parent ?? "-"])];
        const w = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] as string).length)) + 2) ?? [];
        return out(rows.map((r) => r.map((c, i) => (i < r.length - 1 ? c.padEnd(w[i] as number) : c)).join("")).join("\n") + "\n");
      }
      case "verify": {
        const diffs = await snaps.verify(id, needName());
        if (json) out(`${JSON.stringify({ ok: diffs.length === 0, differences: diffs })}\n`);
        else out(diffs.length ? diffs.map((d) => `${d.path}: ${d.what}\n`).join("") : `snapshot ${name} of ${id}: every file matches its manifest\n`);
        if (diffs.length) throw new NexcageError("integrity", `snapshot ${name} of ${id}: ${diffs.length} difference${diffs.length > 1 ? "s" : ""} from its manifest`);
        return;
      }
      case "restore": {
        const r = await snaps.restore(id, needName(), { force: args.force === true, verify: args.verify === true });
        if (r.differences?.length) {
          out(r.differences.map((d) => `${d.path}: ${d.what}\n`).join(""));
          throw new NexcageError("integrity", `restored rootfs of ${id} differs from snapshot ${name} in ${r.differences.length} places`);
        }
        return out(`restored ${id} to ${name}${r.restarted ? " (restarted)" : ""}${r.differences ? ", verified" : ""}\n`);
      }
      case "delete":
        return snaps.delete(id, needName());
      case "prune": {
        const cfg = (await rt.getConfig()).snapshots;
        const r = await snaps.prune(id, {
          keepLast: args["keep-last"] !== undefined ? Number(args["keep-last"]) : cfg.keepLast,
          maxAge: args["max-age"] ?? cfg.maxAge,
          dryRun: args["dry-run"] === true,
        });
        return out([...r.deleted.map((n) => `${args["dry-run"] ? "would delete" : "deleted"} ${n}\n`), ...r.kept.map((k) => `kept ${k.name}: ${k.why}\n`)].join(""));
      }
      case "export":
        return snaps.export(id, needName(), { ...(args.output ? { output: String(args.output) } : {}), ...(args.parent ? { parent: String(args.parent) } : {}) });
      case "import": {
        const m = await snaps.import(id, needName(), args.input ? String(args.input) : undefined);
        return out(`imported snapshot ${m.name} of ${id}: ${m.files} files, ${mib(m.bytes)}, verified\n`);
      }
      default:
        throw new NexcageError("usage", `unknown snapshot action ${JSON.stringify(action)}: ${USAGE}`);
    }
  },
});
