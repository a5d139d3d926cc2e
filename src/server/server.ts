// `nexcage serve`: open the database, reconcile it with the runtime, then serve the API until SIGTERM/SIGINT.
// Everything here is wiring; the policy lives in sandboxes.ts (quotas, bundles), exec.ts, files.ts, app.ts.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statfsSync, statSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { dirname } from "node:path";
import busybox from "../../native/build/busybox" with { type: "file" };
import { NexcageError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import { ServerDb, type HostLimits } from "../db/db.ts";
import { ImageStore } from "../images/images.ts";
import { diskMode } from "../images/rootfs.ts";
import { buildApp } from "./app.ts";
import type { SandboxEngine } from "./engine.ts";
import { ExecService, type wsExec } from "./exec.ts";

type WsConn = import("bun").ServerWebSocket<ReturnType<typeof wsExec>>;
import { TenantLimits, type LimitOptions } from "./limits.ts";
import { checkListen, type Listen } from "./listen.ts";
import { Metrics } from "./metrics.ts";
import { reconcile, type ReconcileReport } from "./reconcile.ts";
import { SandboxService, setMetricsHook, type Defaults } from "./sandboxes.ts";
import { startReaper } from "./ttl.ts";

export interface ServeOptions {
  listen: Listen;
  dbPath: string;
  /** bundles, exec output, image cache (default: next to the database) */
  dataDir: string;
  imagesDir: string;
  engine: SandboxEngine;
  /** backend health as data */
  health: () => Promise<unknown>;
  tls?: { cert: string; key: string };
  insecure?: boolean;
  /** host capacity overrides (else: cores, RAM, the data directory's filesystem) and the overcommit ratio */
  capacity?: Partial<HostLimits>;
  overcommit?: number;
  defaults?: Partial<Defaults>;
  limits?: Partial<LimitOptions>;
  maxBody?: number;
  maxUpload?: number;
  ttlCheckMs?: number;
  version: string;
  /** one line per event worth an admin's eye (listening, warnings, reconcile) */
  say: (line: string) => void;
}

export interface RunningServer {
  url: string;
  reconciled: ReconcileReport;
  stop(): Promise<void>;
}

export const DEFAULTS: Defaults = { vcpus: 1, memory: 512 * 2 ** 20, disk: 2 ** 30, pids: 1024 };

export function hostLimits(dataDir: string, over: Partial<HostLimits> = {}, ratio = 1): HostLimits {
  let disk: number | null = null;
  try {
    const s = statfsSync(dataDir);
    disk = Number(s.blocks) * Number(s.bsize);
  } catch {}
  const cap = { vcpus: over.vcpus ?? cpus().length, memory: over.memory ?? totalmem(), disk: over.disk ?? disk };
  return {
    vcpus: cap.vcpus === null ? null : cap.vcpus * ratio,
    memory: cap.memory === null ? null : Math.floor(cap.memory * ratio),
    disk: cap.disk === null ? null : Math.floor(cap.disk * ratio),
  };
}

/** the embedded static busybox, on the host, for the idle init of sandboxes */
function idleInit(dataDir: string): string {
  const path = `${dataDir}/bin/busybox`;
  const want = readFileSync(busybox);
  if (!existsSync(path) || statSync(path).size !== want.length) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    writeFileSync(`${path}.tmp`, want, { mode: 0o755 });
    renameSync(`${path}.tmp`, path);
  }
  return path;
}

/** everything but the listening socket (tests drive the app in-process) */
export async function assemble(o: Omit<ServeOptions, "listen" | "tls" | "insecure">) {
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const db = new ServerDb(o.dbPath);
  const host = hostLimits(o.dataDir, o.capacity, o.overcommit ?? 1);
  const images = new ImageStore(o.imagesDir, `${o.dataDir}/images`);
  const disk = await diskMode(`${o.dataDir}/sandboxes`);
  o.say(disk.kind === "none" ? `sandbox disk sizes are counted against quotas but not enforced: ${disk.why}` : "sandbox disk sizes are enforced (btrfs qgroups)");
  const sandboxes = new SandboxService({ db, engine: o.engine, images, dataDir: o.dataDir, host, defaults: { ...DEFAULTS, ...o.defaults }, idleInit: idleInit(o.dataDir), disk });
  const metrics = new Metrics(db);
  setMetricsHook({ created: (backend, s, result) => metrics.createSeconds.observe({ backend, result }, s) });
  const execs = new ExecService(sandboxes, o.dataDir, (backend, s) => metrics.execSeconds.observe({ backend }, s));
  const reconciled = await reconcile(sandboxes, execs, o.dataDir);
  const fixed = Object.entries(reconciled).filter(([, v]) => (v as string[]).length);
  if (fixed.length) o.say(`reconciled after an unclean stop: ${fixed.map(([k, v]) => `${k} ${(v as string[]).join(" ")}`).join("; ")}`);
  const limits = new TenantLimits({ rate: 50, burst: 200, concurrent: 16, ...o.limits });
  const { app, routes } = buildApp({
    db,
    sandboxes,
    execs,
    metrics,
    limits,
    version: o.version,
    maxBody: o.maxBody ?? 1 << 20,
    maxUpload: o.maxUpload ?? 1 << 30,
    health: async () => ({
      backends: await o.health(),
      capacity: host,
      usage: db.hostUsage(),
      database: { path: db.path, schemaVersion: db.schemaVersion },
      images: o.imagesDir,
    }),
  });
  return { db, host, disk, images, sandboxes, metrics, execs, reconciled, limits, app, routes };
}

/** what Bun.serve needs around the app: idle timeouts lifted for streams, the WebSocket exec's handlers */
export function bunHandlers(app: { fetch: (req: Request, env: unknown) => Response | Promise<Response> }, maxBody: number) {
  return {
    fetch(req: Request, srv: ReturnType<typeof Bun.serve>) {
      // an exec stream lasts as long as its command, a transfer as long as its file: no idle timeout for those
      const path = new URL(req.url).pathname;
      if (path.endsWith("/exec") || path.endsWith("/exec/ws") || path.endsWith("/files/content")) srv.timeout(req, 0);
      return app.fetch(req, srv);
    },
    maxRequestBodySize: maxBody + 1,
    // each upgraded socket carries its own handler (app.ts: the WebSocket exec)
    websocket: {
      message: (ws: WsConn, msg: string | Buffer) => ws.data.message(ws, msg),
      close: (ws: WsConn) => ws.data.close(),
    },
  };
}

export async function startServer(o: ServeOptions): Promise<RunningServer> {
  const warning = checkListen(o.listen, !!o.tls, !!o.insecure);
  if (warning) o.say(warning);
  const { db, host, sandboxes, reconciled, app } = await assemble(o);
  const stopReaper = startReaper(sandboxes, o.ttlCheckMs ?? 5000);

  let server: ReturnType<typeof Bun.serve>;
  let url: string;
  const common = bunHandlers(app, Math.max(o.maxUpload ?? 1 << 30, o.maxBody ?? 1 << 20));

  if (o.listen.kind === "unix") {
    const path = o.listen.path;
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    if (existsSync(path)) {
      if (await listening(path)) throw new NexcageError("exists", `another server is listening on ${path}`);
      rmSync(path, { force: true });
    }
    // bound with a umask that leaves it root's alone from the first instant, then made sure of
    const old = process.umask(0o177);
    try {
      // Bun ignores per-request timeout(req, 0) on Unix sockets (a silent exec stream would be cut after 10 s),
      // so idle connections are never timed out there; the socket is root's alone (types omit the option)
      server = Bun.serve({ ...common, unix: path, idleTimeout: 0 } as Parameters<typeof Bun.serve>[0]);
    } finally {
      process.umask(old);
    }
    chmodSync(path, 0o600);
    url = `unix:${path}`;
  } else {
    try {
      server = Bun.serve({ ...common, hostname: o.listen.host, port: o.listen.port, ...(o.tls ? { tls: { cert: Bun.file(o.tls.cert), key: Bun.file(o.tls.key) } } : {}) });
    } catch (e) {
      throw new NexcageError("failure", `cannot listen on ${o.listen.host}:${o.listen.port}: ${(e as Error).message}`);
    }
    url = `${o.tls ? "https" : "http"}://${o.listen.host.includes(":") ? `[${o.listen.host}]` : o.listen.host}:${server.port}`;
  }
  o.say(`nexcage serve: listening on ${url} (database ${db.path}, ${db.tenants().length} tenants, ${db.sandboxes().length} sandboxes)`);
  log().debug(`host capacity: ${JSON.stringify(host)}`);
  return {
    url,
    reconciled,
    async stop() {
      stopReaper();
      await server.stop(true);
      if (o.listen.kind === "unix") rmSync(o.listen.path, { force: true });
      db.close();
    },
  };
}

async function listening(path: string): Promise<boolean> {
  try {
    const s = await Bun.connect({ unix: path, socket: { data() {} } });
    s.end();
    return true;
  } catch {
    return false;
  }
}
