// Sandboxes: the server's policy over the engine. A create reserves quota (one transaction), builds a bundle
// from an image or a snapshot with the reservation written into linux.resources (so the kernel enforces it),
// and hands it to the engine; any failure undoes every step. Each sandbox is a container of the runtime with
// the same id, marked by annotations so that reconcile can tell the server's containers from anyone else's.
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { NexcageError } from "../core/errors.ts";
import { faultPoint } from "../core/fault.ts";
import { log } from "../core/log.ts";
import type { HostLimits, SandboxRow, SandboxState, ServerDb } from "../db/db.ts";
import type { ImageConfig, ImageStore } from "../images/images.ts";
import { fillRootfs, limitRootfs, makeRootfs, removeBundle, type DiskMode } from "../images/rootfs.ts";
import { defaultSpec } from "../oci/default-spec.ts";
import type { SandboxEngine, SnapshotInfo } from "./engine.ts";
import { ApiError } from "./errors.ts";
import type { CreateSandboxBody } from "./schemas.ts";
import { parseSize } from "./units.ts";

/** who is calling: from the bearer token */
export interface Principal {
  tokenId: string;
  tenantId: number | null;
  tenant: string | null;
  admin: boolean;
}

export const ANN = {
  sandbox: "org.nexcage.sandbox",
  tenant: "org.nexcage.sandbox.tenant",
  /** the database the sandbox belongs to: two servers on one runtime root never reconcile each other's */
  db: "org.nexcage.sandbox.db",
  backend: "org.nexcage.backend",
  policy: "org.nexcage.policy",
  network: "org.nexcage.network",
  ports: "org.nexcage.ports",
} as const;

export interface Defaults {
  vcpus: number;
  memory: number;
  disk: number;
  pids: number;
}

export interface SandboxServiceOptions {
  db: ServerDb;
  engine: SandboxEngine;
  images: ImageStore;
  /** <dataDir>/sandboxes/<id> holds each bundle */
  dataDir: string;
  host: HostLimits;
  defaults: Defaults;
  /** a static busybox on the host, bind-mounted read-only as the idle init of sandboxes without a command */
  idleInit: string;
  /** whether a rootfs's size can be a real limit here */
  disk: DiskMode;
}

export interface SandboxView {
  id: string;
  name: string | null;
  tenant: string;
  state: SandboxState;
  backend: string | null;
  image: string;
  resources: { vcpus: number; memory: number; disk: number; pids: number };
  created: string;
  ttl: { idleSeconds: number; action: string; expiresAt: string } | null;
  network: string | null;
  ports: unknown[] | null;
  error: string | null;
}

// busybox picks its applet by argv[0]'s basename: it must be "busybox" for `busybox sleep infinity`
const IDLE_INIT_PATH = "/dev/.nexcage-init/busybox";
/** the set Docker and Podman give a container by default */
const SANDBOX_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP"];
const PERIOD = 100_000;

/** this process's hard RLIMIT_NOFILE: raising a container's above it needs CAP_SYS_RESOURCE, which a server
 *  in a container may not have */
function hardNofile(): number {
  try {
    const line = readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith("Max open files"));
    const hard = line?.trim().split(/\s+/)[4];
    return hard === "unlimited" ? 65536 : Number(hard) || 1024;
  } catch {
    return 1024;
  }
}

export function newSandboxId(): string {
  // 60 random bits in lowercase base32: short enough to type, unique enough for any host
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  const b = randomBytes(12);
  let s = "";
  for (let i = 0; i < 12; i++) s += alphabet[(b[i] as number) & 31];
  return `sb-${s}`;
}

export class SandboxService {
  readonly db: ServerDb;
  readonly engine: SandboxEngine;
  /** per-sandbox queue: a delete waits for the snapshot before it, a restore for the stop */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(readonly o: SandboxServiceOptions) {
    this.db = o.db;
    this.engine = o.engine;
  }

  bundleDir(id: string): string {
    return `${this.o.dataDir}/sandboxes/${id}`;
  }

  /** run fn after every earlier operation on this sandbox (in this process) has finished */
  serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => {});
    this.queues.set(id, tail);
    void tail.then(() => {
      if (this.queues.get(id) === tail) this.queues.delete(id);
    });
    return next;
  }

  /** the tenant a call acts for: its token's, or (admin tokens) the one it names */
  tenantFor(p: Principal, named?: string): number {
    if (named !== undefined) {
      if (!p.admin && named !== p.tenant) throw new ApiError(403, "forbidden", `this token cannot act for tenant ${named}`);
      const t = this.db.tenant(named);
      if (!t) throw new NexcageError("notFound", `tenant ${named} does not exist`);
      return t.id;
    }
    if (p.tenantId === null) throw new ApiError(400, "badRequest", "an admin token without a tenant must name one: \"tenant\": NAME");
    return p.tenantId;
  }

  /** the sandbox if the caller may see it; a foreign one is reported exactly like a missing one */
  own(p: Principal, id: string): SandboxRow {
    const row = /^sb-[a-z2-7]{12}$/.test(id) ? this.db.sandbox(id) : undefined;
    if (!row || (!p.admin && row.tenantId !== p.tenantId)) throw new NexcageError("notFound", `sandbox ${id} does not exist`);
    return row;
  }

  view(row: SandboxRow): SandboxView {
    const req = JSON.parse(row.request) as CreateSandboxBody;
    return {
      id: row.id,
      name: row.name,
      tenant: row.tenant,
      state: row.state,
      backend: row.backend,
      image: row.image,
      resources: { vcpus: row.vcpus, memory: row.memory, disk: row.disk, pids: row.pids },
      created: row.created,
      ttl: row.ttlSeconds ? { idleSeconds: row.ttlSeconds, action: row.ttlAction ?? "stop", expiresAt: new Date(row.lastActive + row.ttlSeconds * 1000).toISOString() } : null,
      network: req.network ?? null,
      ports: req.ports ?? null,
      error: row.error,
    };
  }

  /** the row with its state refreshed from the engine (a sandbox whose main process ended is stopped) */
  async refresh(row: SandboxRow): Promise<SandboxRow> {
    if (row.state !== "running" && row.state !== "paused" && row.state !== "stopped") return row;
    const st = await this.engine.status(row.id);
    const now: SandboxState = st === "running" || st === "paused" ? st : "stopped";
    if (now !== row.state) {
      this.db.setSandbox(row.id, { state: now });
      return { ...row, state: now };
    }
    return row;
  }

  async create(p: Principal, body: CreateSandboxBody): Promise<SandboxView> {
    const tenantId = this.tenantFor(p, body.tenant);
    const res = body.resources ?? {};
    const limits = {
      vcpus: res.vcpus ?? this.o.defaults.vcpus,
      memory: res.memory !== undefined ? parseSize(res.memory, "resources.memory") : this.o.defaults.memory,
      disk: res.disk !== undefined ? parseSize(res.disk, "resources.disk") : this.o.defaults.disk,
      pids: res.pids ?? this.o.defaults.pids,
    };
    if (limits.memory < 8 << 20) throw new NexcageError("invalidSpec", "resources.memory: at least 8M");
    if (res.disk !== undefined && this.o.disk.kind === "none") {
      // no silent downgrade: a disk size asked for must be a limit the storage enforces
      throw new NexcageError("unsupported", `resources.disk: the sandbox storage cannot enforce a disk limit (${this.o.disk.why}); leave it out (the default ${this.o.defaults.disk} bytes is counted against the quota)`);
    }
    // the source sandbox of a snapshot must be the same tenant's
    const src = body.fromSnapshot ? this.own(p, body.fromSnapshot.sandbox) : undefined;
    if (src && src.tenantId !== tenantId) throw new NexcageError("notFound", `sandbox ${src.id} does not exist`);
    const id = newSandboxId();
    const bundle = this.bundleDir(id);
    const row = this.db.reserve(
      {
        id,
        tenantId,
        name: body.name,
        image: src ? src.image : (body.image as string),
        bundle,
        ...limits,
        ttlSeconds: body.ttl?.idleSeconds,
        ttlAction: body.ttl?.action,
        request: body,
      },
      this.o.host,
    );
    return this.serial(id, async () => {
      const t0 = performance.now();
      let launched = false;
      try {
        faultPoint("api.create.after-reserve");
        mkdirSync(bundle, { recursive: true, mode: 0o700 });
        await makeRootfs(`${bundle}/rootfs`, this.o.disk, limits.disk);
        let config: ImageConfig;
        if (src && body.fromSnapshot) {
          // the snapshot's own tree; the process defaults are those of the image it came from
          await this.engine.snapshotCopy(src.id, body.fromSnapshot.snapshot, `${bundle}/rootfs`);
          config = (await this.o.images.resolve(src.image).catch(() => undefined))?.config ?? { args: [], env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], cwd: "/", user: { uid: 0, gid: 0 } };
        } else {
          const image = await this.o.images.resolve(body.image as string);
          await fillRootfs(image.rootfs, `${bundle}/rootfs`);
          config = image.config;
        }
        writeFileSync(`${bundle}/config.json`, JSON.stringify(this.spec(id, row.tenant, body, config, limits)));
        faultPoint("api.create.after-bundle");
        launched = true;
        const backend = await this.engine.launch(id, bundle);
        faultPoint("api.create.after-launch");
        this.db.setSandbox(id, { state: "running", backend });
        metricsHook?.created(backend, (performance.now() - t0) / 1000, "ok");
        return this.view(this.db.sandbox(id) as SandboxRow);
      } catch (e) {
        metricsHook?.created(body.backend ?? "unknown", (performance.now() - t0) / 1000, "error");
        if (launched) await this.engine.remove(id).catch((r) => log().warn(`create ${id}: rollback: ${(r as Error).message}`));
        await removeBundle(bundle);
        this.db.releaseSandbox(id);
        throw e;
      }
    });
  }

  /** the bundle's config.json: the image's process defaults, the request, the reservation as real limits */
  spec(id: string, tenant: string, body: CreateSandboxBody, image: ImageConfig, limits: Defaults): Record<string, any> {
    const args = body.command ?? [IDLE_INIT_PATH, "sleep", "infinity"];
    const spec = defaultSpec({ args, terminal: false, hostname: id }) as Record<string, any>;
    spec.root.readonly = false;
    const env = new Map(image.env.map((e) => [e.slice(0, e.indexOf("=")), e] as const));
    for (const [k, val] of Object.entries(body.env ?? {})) env.set(k, `${k}=${val}`);
    spec.process.env = [...env.values()];
    spec.process.cwd = body.cwd ?? image.cwd;
    spec.process.user = image.user;
    // an agent's sandbox runs package managers and builds: the capabilities container engines give by
    // default (chown, setuid for su/apt, ...) and a sane fd count; no-new-privileges stays
    spec.process.capabilities = Object.fromEntries(["bounding", "effective", "permitted"].map((k) => [k, SANDBOX_CAPS]));
    const nofile = Math.min(65536, hardNofile());
    spec.process.rlimits = [{ type: "RLIMIT_NOFILE", hard: nofile, soft: nofile }];
    if (!body.command) {
      spec.mounts.push({ destination: IDLE_INIT_PATH, type: "bind", source: this.o.idleInit, options: ["bind", "ro", "nosuid", "nodev"] });
    }
    spec.linux.resources = {
      devices: [{ allow: false, access: "rwm" }],
      memory: { limit: limits.memory, swap: limits.memory },
      cpu: { quota: Math.max(1000, Math.round(limits.vcpus * PERIOD)), period: PERIOD },
      pids: { limit: limits.pids },
    };
    const ann: Record<string, string> = { [ANN.sandbox]: id, [ANN.tenant]: tenant, [ANN.db]: this.db.path };
    if (body.backend) ann[ANN.backend] = body.backend;
    if (body.policy) ann[ANN.policy] = body.policy;
    if (body.network) ann[ANN.network] = body.network;
    if (body.ports?.length) ann[ANN.ports] = body.ports.map((x) => `${x.host ?? ""}:${x.container}/${x.protocol}`).join(",");
    spec.annotations = ann;
    return spec;
  }

  async list(p: Principal, tenant?: string): Promise<SandboxView[]> {
    const rows = p.admin ? (tenant ? this.db.sandboxes(this.tenantFor(p, tenant)) : this.db.sandboxes()) : this.db.sandboxes(p.tenantId as number);
    const out: SandboxView[] = [];
    for (const r of rows) out.push(this.view(await this.refresh(r)));
    return out;
  }

  async get(p: Principal, id: string): Promise<SandboxView> {
    return this.view(await this.refresh(this.own(p, id)));
  }

  async delete(p: Principal, id: string): Promise<void> {
    this.own(p, id);
    await this.serial(id, async () => {
      const row = this.own(p, id);
      if (row.state === "creating") throw new NexcageError("badState", `sandbox ${id} is being created`);
      this.db.setSandbox(id, { state: "deleting" });
      faultPoint("api.delete.after-mark");
      await this.engine.remove(id);
      await removeBundle(this.bundleDir(id));
      rmSync(`${this.o.dataDir}/execs/${id}`, { recursive: true, force: true });
      this.db.releaseSandbox(id);
    });
  }

  private async live(p: Principal, id: string, want: SandboxState[], verb: string): Promise<SandboxRow> {
    const row = await this.refresh(this.own(p, id));
    if (!want.includes(row.state)) throw new NexcageError("badState", `cannot ${verb} sandbox ${id}: it is ${row.state}`);
    this.db.touchSandbox(id);
    return row;
  }

  async pause(p: Principal, id: string): Promise<SandboxView> {
    await this.serial(id, async () => {
      await this.live(p, id, ["running"], "pause");
      await this.engine.pause(id);
      this.db.setSandbox(id, { state: "paused" });
    });
    return this.get(p, id);
  }

  async resume(p: Principal, id: string): Promise<SandboxView> {
    await this.serial(id, async () => {
      await this.live(p, id, ["paused"], "resume");
      await this.engine.resume(id);
      this.db.setSandbox(id, { state: "running" });
    });
    return this.get(p, id);
  }

  async stop(p: Principal, id: string): Promise<SandboxView> {
    await this.serial(id, async () => {
      await this.live(p, id, ["running", "paused", "stopped"], "stop");
      await this.engine.stop(id);
      this.db.setSandbox(id, { state: "stopped" });
    });
    return this.get(p, id);
  }

  /** a stopped sandbox runs again from its bundle (its files kept; its reservation never left) */
  async start(p: Principal, id: string): Promise<SandboxView> {
    await this.serial(id, async () => {
      await this.live(p, id, ["stopped"], "start");
      await this.engine.remove(id);
      const backend = await this.engine.launch(id, this.bundleDir(id));
      this.db.setSandbox(id, { state: "running", backend, error: null });
    });
    return this.get(p, id);
  }

  async stats(p: Principal, id: string): Promise<unknown> {
    await this.live(p, id, ["running", "paused"], "read stats of");
    return this.engine.stats(id);
  }

  extendTtl(p: Principal, id: string, b: { idleSeconds?: number | undefined; action?: string | undefined }): SandboxView {
    const row = this.own(p, id);
    const secs = b.idleSeconds ?? row.ttlSeconds;
    if (!secs) throw new NexcageError("invalidSpec", `sandbox ${id} has no TTL: give idleSeconds`);
    this.db.setSandbox(id, { ttlSeconds: secs });
    if (b.action) this.db.db.query("UPDATE sandboxes SET ttl_action = ? WHERE id = ?").run(b.action, id);
    this.db.touchSandbox(id);
    return this.view(this.db.sandbox(id) as SandboxRow);
  }

  // ---- snapshots

  async snapshotCreate(p: Principal, id: string, name?: string): Promise<SnapshotInfo> {
    const row = this.own(p, id);
    const snap = name ?? `snap-${new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").replace(/\..*$/, "")}`;
    return this.serial(id, async () => {
      await this.live(p, id, ["running", "paused", "stopped"], "snapshot");
      this.db.reserveSnapshot(id, snap, row.tenantId);
      try {
        const info = await this.engine.snapshotCreate(id, snap);
        this.db.completeSnapshot(id, snap);
        return info;
      } catch (e) {
        this.db.releaseSnapshot(id, snap);
        throw e;
      }
    });
  }

  async snapshotList(p: Principal, id: string): Promise<SnapshotInfo[]> {
    this.own(p, id);
    return this.engine.snapshotList(id);
  }

  async snapshotVerify(p: Principal, id: string, name: string) {
    this.own(p, id);
    const diffs = await this.engine.snapshotVerify(id, name);
    return { ok: diffs.length === 0, differences: diffs };
  }

  async snapshotRestore(p: Principal, id: string, name: string) {
    this.own(p, id);
    return this.serial(id, async () => {
      await this.live(p, id, ["running", "paused", "stopped"], "restore");
      const r = await this.engine.snapshotRestore(id, name);
      // a restore swaps in a new tree: the size limit goes on it again
      await limitRootfs(`${this.bundleDir(id)}/rootfs`, this.o.disk, this.own(p, id).disk);
      if (r.restarted) this.db.setSandbox(id, { state: "running" });
      return r;
    });
  }

  async snapshotDelete(p: Principal, id: string, name: string): Promise<void> {
    this.own(p, id);
    await this.serial(id, async () => {
      await this.engine.snapshotDelete(id, name);
      this.db.releaseSnapshot(id, name);
    });
  }
}

/** the metrics module registers itself here (no import from this side: metrics stay optional) */
export let metricsHook: { created(backend: string, seconds: number, result: string): void } | undefined;
export function setMetricsHook(h: typeof metricsHook): void {
  metricsHook = h;
}
