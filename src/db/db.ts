// The sandbox server's state: one SQLite file (bun:sqlite, WAL), shared by `nexcage serve` and the admin
// verbs (`nexcage tenant`, `nexcage token`). Quota reservations are the sandbox rows themselves: checking and
// reserving happen in one IMMEDIATE transaction, so two concurrent creates can never both take the last
// unit, and usage is always derived from what exists (nothing to drift, nothing to leak once a row goes).
import { Database } from "bun:sqlite";
import { chmodSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { NexcageError } from "../core/errors.ts";
import { MIGRATIONS } from "./migrations.ts";
import { hashSecret, newTokenId, newTokenSecret, parseToken, sameHash } from "./tokens.ts";

export const DEFAULT_DB = "/var/lib/nexcage/server.db";

export interface Quotas {
  maxSandboxes: number | null;
  maxVcpus: number | null;
  maxMemory: number | null;
  maxDisk: number | null;
  maxSnapshots: number | null;
}

export interface Tenant extends Quotas {
  id: number;
  name: string;
  created: string;
}

export interface Usage {
  sandboxes: number;
  vcpus: number;
  memory: number;
  disk: number;
  snapshots: number;
}

export interface TokenInfo {
  id: string;
  tenantId: number | null;
  tenant: string | null;
  admin: boolean;
  created: string;
  expires: string | null;
  revoked: string | null;
  lastUsed: string | null;
  note: string | null;
}

export type SandboxState = "creating" | "running" | "paused" | "stopped" | "deleting" | "failed";

export interface SandboxRow {
  id: string;
  tenantId: number;
  tenant: string;
  name: string | null;
  state: SandboxState;
  backend: string | null;
  image: string;
  bundle: string;
  vcpus: number;
  memory: number;
  disk: number;
  pids: number;
  created: string;
  updated: string;
  lastActive: number;
  ttlSeconds: number | null;
  ttlAction: string | null;
  request: string;
  error: string | null;
}

/** what a create asks to hold: the sandbox row before it exists */
export type Reservation = Pick<SandboxRow, "id" | "tenantId" | "image" | "bundle" | "vcpus" | "memory" | "disk" | "pids"> & {
  name?: string | undefined;
  ttlSeconds?: number | undefined;
  ttlAction?: string | undefined;
  request: unknown;
};

/** host-wide capacity (already multiplied by the overcommit ratio); null = not limited */
export interface HostLimits {
  vcpus: number | null;
  memory: number | null;
  disk: number | null;
}

export interface ExecRow {
  id: string;
  sandboxId: string;
  tenantId: number;
  command: string;
  started: string;
  finished: string | null;
  exitCode: number | null;
  pid: number | null;
  dir: string;
}

export interface AuditEntry {
  tokenId: string | null;
  tenant: string | null;
  action: string;
  target: string | null;
  status: number;
  result: string;
}

/** A quota or host limit that a request would exceed (the server answers 403 with code quotaExceeded). */
export class QuotaError extends Error {
  constructor(
    readonly scope: "tenant" | "host",
    readonly what: string,
    readonly limit: number,
    readonly used: number,
    readonly requested: number,
  ) {
    super(`${scope === "tenant" ? "tenant quota" : "host capacity"} exceeded: ${what}: ${fmt(what, used)} used + ${fmt(what, requested)} requested > ${fmt(what, limit)}`);
    this.name = "QuotaError";
  }
}

function fmt(what: string, n: number): string {
  if (what === "memory" || what === "disk") return formatBytes(n);
  return String(Math.round(n * 1000) / 1000);
}

export function formatBytes(n: number): string {
  for (const [u, f] of [["G", 2 ** 30], ["M", 2 ** 20], ["K", 2 ** 10]] as const) if (n >= f && n % f === 0) return `${n / f}${u}`;
  return `${n}B`;
}

const now = () => new Date().toISOString();

const TENANT_COLS = "id, name, created, max_sandboxes AS maxSandboxes, max_vcpus AS maxVcpus, max_memory AS maxMemory, max_disk AS maxDisk, max_snapshots AS maxSnapshots";
const SANDBOX_COLS = `s.id, s.tenant_id AS tenantId, t.name AS tenant, s.name, s.state, s.backend, s.image, s.bundle, s.vcpus, s.memory, s.disk, s.pids,
  s.created, s.updated, s.last_active AS lastActive, s.ttl_seconds AS ttlSeconds, s.ttl_action AS ttlAction, s.request, s.error`;

export class ServerDb {
  readonly db: Database;

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    try {
      this.db = new Database(path, { create: true, strict: true });
    } catch (e) {
      throw new NexcageError("failure", `cannot open the server database ${path}: ${(e as Error).message}`);
    }
    chmodSync(path, 0o600);
    this.db.exec("PRAGMA journal_mode = WAL");
    // FULL: a reservation that was answered must survive a power loss, not only a crash of nexcage
    this.db.exec("PRAGMA synchronous = FULL");
    this.db.exec("PRAGMA foreign_keys = ON");
    // the CLI's admin verbs and the server share the file: wait for each other's short transactions
    this.db.exec("PRAGMA busy_timeout = 5000");
    this.migrate();
  }

  close(): void {
    this.db.close();
  }

  private migrate(): void {
    const current = (this.db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
    if (current > MIGRATIONS.length) {
      throw new NexcageError("failure", `the server database ${this.path} is schema version ${current}, newer than this nexcage knows (${MIGRATIONS.length}): upgrade nexcage`);
    }
    for (let v = current; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v] as string);
        this.db.exec(`PRAGMA user_version = ${v + 1}`);
      }).immediate();
    }
  }

  get schemaVersion(): number {
    return (this.db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
  }

  // ---- tenants

  addTenant(name: string, q: Partial<Quotas> = {}): Tenant {
    if (!/^[a-z][a-z0-9_-]{0,62}$/.test(name)) throw new NexcageError("usage", `invalid tenant name ${JSON.stringify(name)}: a lowercase letter, then up to 62 lowercase letters, digits, - or _`);
    try {
      this.db
        .query("INSERT INTO tenants (name, created, max_sandboxes, max_vcpus, max_memory, max_disk, max_snapshots) VALUES (?, ?, ?, ?, ?, ?, ?)")
        .run(name, now(), q.maxSandboxes ?? null, q.maxVcpus ?? null, q.maxMemory ?? null, q.maxDisk ?? null, q.maxSnapshots ?? null);
    } catch (e) {
      if (String((e as Error).message).includes("UNIQUE")) throw new NexcageError("exists", `tenant ${name} already exists`);
      throw e;
    }
    return this.tenant(name) as Tenant;
  }

  /** change some quotas (null = unlimited; absent = unchanged) */
  setQuotas(name: string, q: Partial<Quotas>): Tenant {
    const t = this.mustTenant(name);
    const cols: Record<keyof Quotas, string> = { maxSandboxes: "max_sandboxes", maxVcpus: "max_vcpus", maxMemory: "max_memory", maxDisk: "max_disk", maxSnapshots: "max_snapshots" };
    for (const [k, col] of Object.entries(cols) as [keyof Quotas, string][]) {
      if (q[k] !== undefined) this.db.query(`UPDATE tenants SET ${col} = ? WHERE id = ?`).run(q[k], t.id);
    }
    return this.mustTenant(name);
  }

  tenant(name: string): Tenant | undefined {
    return (this.db.query(`SELECT ${TENANT_COLS} FROM tenants WHERE name = ?`).get(name) as Tenant | null) ?? undefined;
  }

  tenantById(id: number): Tenant | undefined {
    return (this.db.query(`SELECT ${TENANT_COLS} FROM tenants WHERE id = ?`).get(id) as Tenant | null) ?? undefined;
  }

  mustTenant(name: string): Tenant {
    const t = this.tenant(name);
    if (!t) throw new NexcageError("notFound", `tenant ${name} does not exist`);
    return t;
  }

  tenants(): Tenant[] {
    return this.db.query(`SELECT ${TENANT_COLS} FROM tenants ORDER BY name`).all() as Tenant[];
  }

  /** only a tenant without sandboxes goes; its tokens go with it */
  removeTenant(name: string): void {
    const t = this.mustTenant(name);
    const n = (this.db.query("SELECT count(*) AS n FROM sandboxes WHERE tenant_id = ?").get(t.id) as { n: number }).n;
    if (n) throw new NexcageError("badState", `tenant ${name} still has ${n} sandboxes: delete them first`);
    this.db.query("DELETE FROM tenants WHERE id = ?").run(t.id);
  }

  usage(tenantId: number): Usage {
    const s = this.db
      .query("SELECT count(*) AS sandboxes, coalesce(sum(vcpus), 0) AS vcpus, coalesce(sum(memory), 0) AS memory, coalesce(sum(disk), 0) AS disk FROM sandboxes WHERE tenant_id = ?")
      .get(tenantId) as Omit<Usage, "snapshots">;
    const snaps = (this.db.query("SELECT count(*) AS n FROM snapshots WHERE tenant_id = ?").get(tenantId) as { n: number }).n;
    return { ...s, snapshots: snaps };
  }

  hostUsage(): Omit<Usage, "snapshots"> {
    return this.db.query("SELECT count(*) AS sandboxes, coalesce(sum(vcpus), 0) AS vcpus, coalesce(sum(memory), 0) AS memory, coalesce(sum(disk), 0) AS disk FROM sandboxes").get() as Omit<Usage, "snapshots">;
  }

  // ---- tokens

  /** a new token; the returned secret is shown once and never stored */
  createToken(o: { tenant?: string | undefined; admin?: boolean; expiresInMs?: number | undefined; note?: string | undefined }): { id: string; token: string } {
    const tenant = o.tenant ? this.mustTenant(o.tenant) : undefined;
    if (!tenant && !o.admin) throw new NexcageError("usage", "a token needs --tenant NAME, or --admin");
    const id = newTokenId();
    const secret = newTokenSecret();
    const expires = o.expiresInMs ? new Date(Date.now() + o.expiresInMs).toISOString() : null;
    this.db
      .query("INSERT INTO tokens (id, tenant_id, admin, hash, created, expires, note) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .run(id, tenant?.id ?? null, o.admin ? 1 : 0, hashSecret(secret), now(), expires, o.note ?? null);
    return { id, token: `nxc_${id}_${secret}` };
  }

  /** the token's identity when it is valid now; otherwise why not (never which part was wrong) */
  authenticate(bearer: string): { ok: true; token: TokenInfo } | { ok: false; why: string } {
    const parsed = parseToken(bearer);
    if (!parsed) return { ok: false, why: "malformed token" };
    const row = this.db.query("SELECT hash FROM tokens WHERE id = ?").get(parsed.id) as { hash: string } | null;
    // compare against something even for an unknown id, so timing does not tell ids apart
    const good = sameHash(hashSecret(parsed.secret), row?.hash ?? "0".repeat(64));
    if (!row || !good) return { ok: false, why: "invalid token" };
    const info = this.token(parsed.id) as TokenInfo;
    if (info.revoked) return { ok: false, why: "token revoked" };
    if (info.expires && Date.parse(info.expires) <= Date.now()) return { ok: false, why: "token expired" };
    return { ok: true, token: info };
  }

  touchToken(id: string): void {
    this.db.query("UPDATE tokens SET last_used = ? WHERE id = ?").run(now(), id);
  }

  token(id: string): TokenInfo | undefined {
    const r = this.db
      .query(
        `SELECT k.id, k.tenant_id AS tenantId, t.name AS tenant, k.admin, k.created, k.expires, k.revoked, k.last_used AS lastUsed, k.note
         FROM tokens k LEFT JOIN tenants t ON t.id = k.tenant_id WHERE k.id = ?`,
      )
      .get(id) as (Omit<TokenInfo, "admin"> & { admin: number }) | null;
    return r ? { ...r, admin: r.admin === 1 } : undefined;
  }

  tokens(): TokenInfo[] {
    const rows = this.db
      .query(
        `SELECT k.id, k.tenant_id AS tenantId, t.name AS tenant, k.admin, k.created, k.expires, k.revoked, k.last_used AS lastUsed, k.note
         FROM tokens k LEFT JOIN tenants t ON t.id = k.tenant_id ORDER BY k.created`,
      )
      .all() as (Omit<TokenInfo, "admin"> & { admin: number })[];
    return rows.map((r) => ({ ...r, admin: r.admin === 1 }));
  }

  revokeToken(id: string): TokenInfo {
    const t = this.token(id.replace(/^nxc_/, "").split("_")[0] as string);
    if (!t) throw new NexcageError("notFound", `token ${id} does not exist`);
    if (!t.revoked) this.db.query("UPDATE tokens SET revoked = ? WHERE id = ?").run(now(), t.id);
    return this.token(t.id) as TokenInfo;
  }

  // ---- sandboxes (each row is also its quota reservation)

  /**
   * Check the tenant's quotas and the host's capacity and insert the sandbox as `creating`, all in one
   * IMMEDIATE transaction (a write lock from the start: concurrent reservations queue instead of racing).
   */
  reserve(r: Reservation, host: HostLimits): SandboxRow {
    this.db.transaction(() => {
      const t = this.tenantById(r.tenantId);
      if (!t) throw new NexcageError("notFound", `tenant ${r.tenantId} does not exist`);
      const u = this.usage(t.id);
      const check = (scope: "tenant" | "host", what: string, limit: number | null, used: number, req: number) => {
        if (limit !== null && used + req > limit + 1e-9) throw new QuotaError(scope, what, limit, used, req);
      };
      check("tenant", "sandboxes", t.maxSandboxes, u.sandboxes, 1);
      check("tenant", "vcpus", t.maxVcpus, u.vcpus, r.vcpus);
      check("tenant", "memory", t.maxMemory, u.memory, r.memory);
      check("tenant", "disk", t.maxDisk, u.disk, r.disk);
      const h = this.hostUsage();
      check("host", "vcpus", host.vcpus, h.vcpus, r.vcpus);
      check("host", "memory", host.memory, h.memory, r.memory);
      check("host", "disk", host.disk, h.disk, r.disk);
      const ts = now();
      this.db
        .query(
          `INSERT INTO sandboxes (id, tenant_id, name, state, image, bundle, vcpus, memory, disk, pids, created, updated, last_active, ttl_seconds, ttl_action, request)
           VALUES (?, ?, ?, 'creating', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(r.id, t.id, r.name ?? null, r.image, r.bundle, r.vcpus, r.memory, r.disk, r.pids, ts, ts, Date.now(), r.ttlSeconds ?? null, r.ttlAction ?? null, JSON.stringify(r.request));
    }).immediate();
    return this.sandbox(r.id) as SandboxRow;
  }

  setSandbox(id: string, f: { state?: SandboxState; backend?: string; error?: string | null; ttlSeconds?: number | null }): void {
    const sets: string[] = ["updated = ?"];
    const args: (string | number | null)[] = [now()];
    if (f.state) sets.push("state = ?"), args.push(f.state);
    if (f.backend) sets.push("backend = ?"), args.push(f.backend);
    if (f.error !== undefined) sets.push("error = ?"), args.push(f.error);
    if (f.ttlSeconds !== undefined) sets.push("ttl_seconds = ?"), args.push(f.ttlSeconds);
    this.db.query(`UPDATE sandboxes SET ${sets.join(", ")} WHERE id = ?`).run(...args, id);
  }

  /** an API call touched the sandbox: its idle TTL starts again */
  touchSandbox(id: string): void {
    this.db.query("UPDATE sandboxes SET last_active = ? WHERE id = ?").run(Date.now(), id);
  }

  sandbox(id: string): SandboxRow | undefined {
    return (this.db.query(`SELECT ${SANDBOX_COLS} FROM sandboxes s JOIN tenants t ON t.id = s.tenant_id WHERE s.id = ?`).get(id) as SandboxRow | null) ?? undefined;
  }

  sandboxes(tenantId?: number): SandboxRow[] {
    if (tenantId === undefined) return this.db.query(`SELECT ${SANDBOX_COLS} FROM sandboxes s JOIN tenants t ON t.id = s.tenant_id ORDER BY s.created`).all() as SandboxRow[];
    return this.db.query(`SELECT ${SANDBOX_COLS} FROM sandboxes s JOIN tenants t ON t.id = s.tenant_id WHERE s.tenant_id = ? ORDER BY s.created`).all(tenantId) as SandboxRow[];
  }

  /** the sandbox is gone: its reservation (and snapshot and exec rows) go with it */
  releaseSandbox(id: string): void {
    this.db.query("DELETE FROM sandboxes WHERE id = ?").run(id);
  }

  // ---- snapshots (counted against max_snapshots)

  reserveSnapshot(sandboxId: string, name: string, tenantId: number): void {
    this.db.transaction(() => {
      const t = this.tenantById(tenantId) as Tenant;
      const n = (this.db.query("SELECT count(*) AS n FROM snapshots WHERE tenant_id = ?").get(tenantId) as { n: number }).n;
      if (t.maxSnapshots !== null && n + 1 > t.maxSnapshots) throw new QuotaError("tenant", "snapshots", t.maxSnapshots, n, 1);
      if (this.db.query("SELECT 1 FROM snapshots WHERE sandbox_id = ? AND name = ?").get(sandboxId, name)) {
        throw new NexcageError("exists", `snapshot ${name} of ${sandboxId} already exists`);
      }
      this.db.query("INSERT INTO snapshots (sandbox_id, name, tenant_id, created) VALUES (?, ?, ?, ?)").run(sandboxId, name, tenantId, now());
    }).immediate();
  }

  completeSnapshot(sandboxId: string, name: string): void {
    this.db.query("UPDATE snapshots SET complete = 1 WHERE sandbox_id = ? AND name = ?").run(sandboxId, name);
  }

  /** record a snapshot that exists on disk but not here (taken by the TTL reaper, or found at reconcile) */
  adoptSnapshot(sandboxId: string, name: string, tenantId: number): void {
    this.db.query("INSERT OR IGNORE INTO snapshots (sandbox_id, name, tenant_id, created, complete) VALUES (?, ?, ?, ?, 1)").run(sandboxId, name, tenantId, now());
  }

  releaseSnapshot(sandboxId: string, name: string): void {
    this.db.query("DELETE FROM snapshots WHERE sandbox_id = ? AND name = ?").run(sandboxId, name);
  }

  snapshotRows(sandboxId: string): { name: string; complete: number }[] {
    return this.db.query("SELECT name, complete FROM snapshots WHERE sandbox_id = ? ORDER BY created").all(sandboxId) as { name: string; complete: number }[];
  }

  // ---- background execs

  addExec(e: Omit<ExecRow, "finished" | "exitCode">): void {
    this.db.query("INSERT INTO execs (id, sandbox_id, tenant_id, command, started, pid, dir) VALUES (?, ?, ?, ?, ?, ?, ?)").run(e.id, e.sandboxId, e.tenantId, e.command, e.started, e.pid, e.dir);
  }

  finishExec(id: string, exitCode: number | null): void {
    this.db.query("UPDATE execs SET finished = ?, exit_code = ? WHERE id = ?").run(now(), exitCode, id);
  }

  exec(id: string): ExecRow | undefined {
    return (
      (this.db
        .query("SELECT id, sandbox_id AS sandboxId, tenant_id AS tenantId, command, started, finished, exit_code AS exitCode, pid, dir FROM execs WHERE id = ?")
        .get(id) as ExecRow | null) ?? undefined
    );
  }

  execs(sandboxId: string): ExecRow[] {
    return this.db
      .query("SELECT id, sandbox_id AS sandboxId, tenant_id AS tenantId, command, started, finished, exit_code AS exitCode, pid, dir FROM execs WHERE sandbox_id = ? ORDER BY started")
      .all(sandboxId) as ExecRow[];
  }

  unfinishedExecs(): ExecRow[] {
    return this.db
      .query("SELECT id, sandbox_id AS sandboxId, tenant_id AS tenantId, command, started, finished, exit_code AS exitCode, pid, dir FROM execs WHERE finished IS NULL")
      .all() as ExecRow[];
  }

  // ---- audit

  audit(e: AuditEntry): void {
    this.db.query("INSERT INTO audit (at, token_id, tenant, action, target, status, result) VALUES (?, ?, ?, ?, ?, ?, ?)").run(now(), e.tokenId, e.tenant, e.action, e.target, e.status, e.result);
  }

  auditLog(o: { tenant?: string; limit?: number } = {}): (AuditEntry & { id: number; at: string })[] {
    const limit = Math.min(o.limit ?? 100, 1000);
    const sel = "SELECT id, at, token_id AS tokenId, tenant, action, target, status, result FROM audit";
    if (o.tenant) return this.db.query(`${sel} WHERE tenant = ? ORDER BY id DESC LIMIT ?`).all(o.tenant, limit) as (AuditEntry & { id: number; at: string })[];
    return this.db.query(`${sel} ORDER BY id DESC LIMIT ?`).all(limit) as (AuditEntry & { id: number; at: string })[];
  }
}
