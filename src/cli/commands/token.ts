import { defineCommand } from "citty";
import { DEFAULT_DB, ServerDb } from "../../db/db.ts";
import { NexcageError } from "../../core/errors.ts";
import { out, str } from "../context.ts";
import { formatTable } from "./tenant.ts";

const USAGE = "token create --tenant NAME [--admin] [--expires DURATION] [--note TEXT] | token list | token revoke ID";

/** "90d", "12h", "30m", "3600s", "2w" → ms */
export function parseDuration(s: string): number {
  const m = /^(\d+)([smhdw])$/.exec(s);
  if (!m || Number(m[1]) === 0) throw new NexcageError("usage", `invalid --expires ${JSON.stringify(s)}: a positive number and s, m, h, d or w (e.g. 90d)`);
  return Number(m[1]) * { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7, w: 6.048e8 }[m[2] as "s"];
}

export default defineCommand({
  meta: { name: "token", description: `sandbox API tokens: ${USAGE}` },
  args: {
    action: { type: "positional", required: true, description: "create, list or revoke" },
    id: { type: "positional", required: false, description: "revoke: the token's id (or the token)" },
    db: { type: "string", description: `the server's database (default ${DEFAULT_DB})` },
    tenant: { type: "string", description: "create: the tenant the token acts for" },
    admin: { type: "boolean", description: "create: an admin token (all tenants, /metrics, tenant administration)" },
    expires: { type: "string", description: "create: valid for this long (e.g. 90d, 12h); default: until revoked" },
    note: { type: "string", description: "create: what the token is for" },
    format: { type: "string", alias: "f", description: "table or json (list)", default: "table" },
  },
  run({ args }) {
    const [action, id] = args._ as [string, string | undefined];
    const db = new ServerDb(str(args.db) ?? DEFAULT_DB);
    try {
      switch (action) {
        case "create": {
          const t = db.createToken({
            tenant: str(args.tenant),
            admin: args.admin === true,
            expiresInMs: str(args.expires) ? parseDuration(args.expires as string) : undefined,
            note: str(args.note),
          });
          db.audit({ tokenId: t.id, tenant: str(args.tenant) ?? null, action: "cli token create", target: t.id, status: 200, result: "ok" });
          // the only time the secret is ever shown: stdout carries just the token, for scripts
          out(`${t.token}\n`);
          out(`token ${t.id} created; it is shown once and stored only as a hash\n`, 2);
          return;
        }
        case "revoke": {
          if (!id) throw new NexcageError("usage", "token revoke needs the token's id");
          const t = db.revokeToken(id);
          db.audit({ tokenId: t.id, tenant: t.tenant, action: "cli token revoke", target: t.id, status: 200, result: "ok" });
          return out(`token ${t.id} revoked\n`);
        }
        case "list": {
          const list = db.tokens();
          if (args.format === "json") return out(`${JSON.stringify(list)}\n`);
          const table = [["ID", "TENANT", "ADMIN", "CREATED", "EXPIRES", "STATE", "NOTE"], ...list.map((t) => [t.id, t.tenant ?? "-", t.admin ? "yes" : "no", t.created, t.expires ?? "-", t.revoked ? "revoked" : t.expires && Date.parse(t.expires) <= Date.now() ? "expired" : "valid", t.note ?? ""])];
          return out(formatTable(table));
        }
        default:
          throw new NexcageError("usage", `unknown token action ${JSON.stringify(action)}: ${USAGE}`);
      }
    } finally {
      db.close();
    }
  },
});
