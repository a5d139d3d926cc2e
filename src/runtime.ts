// The engine behind every command and the library entry (`import { Runtime } from "nexcage"`).
// Each verb: load the record → derive status → guard → act through the backend → save, under the
// container's lock for anything that changes state. Commands stay thin over this class.
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { getBackend } from "./backends/index.ts";
import type { Backend, BackendContext, BackendName, ContainerRecord, CreateOptions, CreateResult, SnapshotHooks, Status } from "./backends/types.ts";
import { loadConfig, type NexcageConfig } from "./core/config.ts";
import { errors, NexcageError } from "./core/errors.ts";
import { validateId } from "./core/ids.ts";
import { log } from "./core/log.ts";
import { pidStartTime, processAlive, type CgroupStats } from "./core/proc.ts";
import { backendContext, queryState } from "./core/query.ts";
import { DEFAULT_ROOT, StateStore } from "./core/store.ts";
import { parseJsonText, readJsonFile } from "./core/validate.ts";
import { runHooks } from "./oci/hooks.ts";
import { loadSpec, parseProcess, parseResources, type Process, type Spec } from "./oci/spec.ts";
import { hookState, nowRfc3339Nano, toOciState, type OciState } from "./oci/state.ts";
import { route, type RouteDecision } from "./router/router.ts";
import type { Network, NetworkInterfaceStats } from "./network/index.ts";

export interface RuntimeOptions {
  root?: string;
  config?: NexcageConfig;
  configPath?: string;
  systemdCgroup?: boolean;
  debug?: boolean;
}

export interface CreateArgs {
  id: string;
  bundle?: string;
  pidFile?: string;
  consoleSocket?: string;
  preserveFds?: number;
  noPivot?: boolean;
  noNewKeyring?: boolean;
}

export interface ExecArgs {
  /** a process.json path, used as is (runc ignores --tty/--env/... then); or `args` (+ overrides) on top of the bundle's process */
  processFile?: string;
  args?: string[];
  tty?: boolean;
  cwd?: string;
  env?: string[];
  user?: { uid: number; gid: number };
  detach?: boolean;
  pidFile?: string;
  consoleSocket?: string;
  preserveFds?: number;
}

interface Loaded {
  rec: ContainerRecord;
  backend: Backend;
  ctx: BackendContext;
  status: Status;
}

export class Runtime {
  readonly root: string;
  readonly store: StateStore;
  private config?: NexcageConfig;
  private net?: Network;
  private readonly configPath: string | undefined;
  private readonly systemdCgroup: boolean;
  private readonly debug: boolean;

  constructor(opts: RuntimeOptions = {}) {
    this.root = resolve(opts.root ?? DEFAULT_ROOT);
    this.store = new StateStore(this.root);
    if (opts.config) this.config = opts.config;
    this.configPath = opts.configPath;
    this.systemdCgroup = opts.systemdCgroup ?? false;
    this.debug = opts.debug ?? false;
  }

  async getConfig(): Promise<NexcageConfig> {
    return (this.config ??= await loadConfig(this.configPath));
  }

  context(backend: BackendName): BackendContext {
    const ctx = backendContext(this.store, backend, { systemdCgroup: this.systemdCgroup, debug: this.debug });
    return this.config ? { ...ctx, config: this.config } : ctx;
  }

  /**
   * Which backend a container gets, and why (also `nexcage route`). The routed backend is probed only when
   * a fallback is configured or when asked to (explain): otherwise its own create reports what is missing.
   */
  async route(
    id: string,
    annotations: Record<string, string> = {},
    opts: { probe?: boolean } = {},
  ): Promise<RouteDecision & { fallbackFrom?: BackendName; problems?: string[] }> {
    const config = await this.getConfig();
    const decision = route(config, validateId(id), annotations);
    const backend = await getBackend(decision.backend);
    if (!opts.probe && !config.fallback.length) return decision;
    const probe = await backend.probe(this.context(decision.backend));
    if (probe.ok) return decision;
    for (const alt of config.fallback) {
      if (alt === decision.backend) continue;
      const p = await (await getBackend(alt)).probe(this.context(alt));
      if (p.ok) {
        return { ...decision, backend: alt, fallbackFrom: decision.backend, problems: probe.problems, reason: `${decision.reason}; ${decision.backend} cannot work here (${probe.problems.join("; ")}), fallback to ${alt}` };
      }
    }
    if (opts.probe) return { ...decision, problems: probe.problems };
    throw new NexcageError("unsupported", `backend ${decision.backend} cannot work on this host: ${probe.problems.join("; ")}`);
  }

  /** The record, its backend and its derived status; undefined when the id is unknown. */
  private async find(id: string): Promise<Loaded | undefined> {
    validateId(id);
    const rec = this.store.read(id);
    if (!rec) return undefined;
    const backend = await getBackend(rec.backend);
    const ctx = this.context(rec.backend);
    return { rec, backend, ctx, status: backend.status(ctx, rec) };
  }

  private async load(id: string): Promise<Loaded> {
    const found = await this.find(id);
    if (!found) throw errors.notFound(id);
    return found;
  }

  /** load → guard → act, holding the container's lock */
  private locked<T>(id: string, act: (c: Loaded) => Promise<T>): Promise<T> {
    return this.store.withLock(validateId(id), async () => act(await this.load(id)));
  }

  async create(a: CreateArgs): Promise<ContainerRecord> {
    return this.createWith(a, (backend, ctx, o) => backend.create(ctx, o));
  }

  /** CRIU restore of a checkpoint into a new container (`nexcage restore`), on backends that can */
  async restoreWithCriu(a: CreateArgs, flags: string[]): Promise<ContainerRecord> {
    return this.createWith(a, (backend, ctx, o) => {
      if (!backend.restoreCheckpoint) throw new NexcageError("unsupported", `the ${backend.name} backend cannot restore CRIU checkpoints (route the container to runc)`);
      return backend.restoreCheckpoint(ctx, o, flags);
    });
  }

  async checkpointWithCriu(id: string, flags: string[]): Promise<void> {
    await this.locked(id, async ({ rec, backend, ctx, status }) => {
      if (status !== "running" && status !== "paused") throw errors.notRunning(id);
      if (!backend.checkpoint) throw new NexcageError("unsupported", `the ${backend.name} backend cannot checkpoint with CRIU (route the container to runc, or use --fs-only)`);
      await backend.checkpoint(ctx, rec, flags);
    });
  }

  private async createWith(a: CreateArgs, make: (backend: Backend, ctx: BackendContext, o: CreateOptions) => Promise<CreateResult>): Promise<ContainerRecord> {
    const id = validateId(a.id);
    const bundle = resolve(a.bundle ?? ".");
    try {
      if (!statSync(bundle).isDirectory()) throw new Error();
    } catch {
      throw new NexcageError("invalidSpec", `bundle ${bundle}: no such directory`);
    }
    const spec = await loadSpec(bundle);
    const annotations = spec.annotations ?? {};
    const decision = await this.route(id, annotations);
    const backend = await getBackend(decision.backend);
    const ctx = this.context(decision.backend);
    log().debug(`create ${id}: backend ${decision.backend} (${decision.reason})`);

    let rolledBack = false;
    return this.store.withLock(
      id,
      async () => {
        const existing = this.store.read(id);
        if (existing && !existing.creating) throw errors.exists(id);
        // a record still marked `creating` while we hold the lock is a crashed create: clear it and go on
        if (existing) await this.discard(existing);

        const rec: ContainerRecord = {
          id,
          backend: decision.backend,
          bundle,
          rootfs: resolve(bundle, spec.root?.path ?? "rootfs"),
          created: nowRfc3339Nano(),
          owner: "",
          annotations,
          pid: 0,
          pidStartTime: 0,
          creating: true,
        };
        this.store.write(rec);
        try {
          const state = () => hookState(rec, "creating");
          if (!backend.capabilities.nativeHooks) {
            await runHooks("prestart", spec.hooks, state());
            await runHooks("createRuntime", spec.hooks, state());
          }
          const made = await make(backend, ctx, {
            id,
            config: await this.getConfig(),
            bundle,
            spec,
            pidFile: `${this.store.containerDir(id)}/init.pid`,
            // absolute: the libcrun child chdir()s into the bundle
            ...(a.consoleSocket ? { consoleSocket: resolve(a.consoleSocket) } : {}),
            preserveFds: a.preserveFds ?? 0,
            noPivot: a.noPivot ?? false,
            noNewKeyring: a.noNewKeyring ?? false,
          });
          recordMade(rec, made);
          // [network hook] CNI ADD into the new container's network namespace (src/network); undone by discard()
          await (await this.network()).attach(rec, spec, typeof made.data?.netns === "string" ? made.data.netns : undefined);
          delete rec.creating;
          this.store.write(rec);
          if (a.pidFile) writePidFile(a.pidFile, made.waitPid ?? rec.pid);
          return rec;
        } catch (e) {
          await this.discard(rec);
          rolledBack = true;
          throw e;
        }
      },
      // a rolled-back create leaves not even its lock file
      { removeAfter: () => rolledBack },
    );
  }

  /** Roll back: remove whatever the backend made and our record. Best effort, never throws. */
  private async discard(rec: ContainerRecord): Promise<void> {
    try {
      const backend = await getBackend(rec.backend);
      await backend.delete(this.context(rec.backend), rec, true);
    } catch (e) {
      log().warn(`rollback of ${rec.id}: ${(e as Error).message}`);
    }
    // [network hook] CNI DEL, idempotent (a crashed attach left a journaled record)
    await (await this.network()).detach(rec.id).catch((e) => log().warn(`rollback of ${rec.id}: network: ${(e as Error).message}`));
    this.store.remove(rec.id);
  }

  async start(id: string): Promise<void> {
    await this.locked(id, async ({ rec, backend, ctx, status }) => {
      if (status === "running") throw new NexcageError("badState", "cannot start an already running container");
      if (status === "stopped") throw new NexcageError("badState", "cannot start a container that has stopped");
      if (status !== "created") throw new NexcageError("badState", `cannot start a container in the ${status} state`);
      const spec = backend.capabilities.nativeHooks ? undefined : await loadSpec(rec.bundle);
      const pid = await backend.start(ctx, rec);
      if (typeof pid === "number") {
        rec.pid = pid;
        rec.pidStartTime = pidStartTime(pid);
        this.store.write(rec);
      }
      if (spec) await runHooks("poststart", spec.hooks, hookState(rec, "running")).catch((e) => log().warn(String(e.message)));
    });
  }

  async state(id: string): Promise<OciState> {
    return queryState(this.store, id, (b) => this.context(b));
  }

  async list(): Promise<OciState[]> {
    const out: OciState[] = [];
    for (const id of this.store.ids()) {
      try {
        const st = await this.state(id);
        out.push({ ...st, owner: ownerOf(this.store.containerDir(id)) });
      } catch (e) {
        if (!(e instanceof NexcageError && e.code === "notFound")) log().warn(`list: ${id}: ${(e as Error).message}`);
      }
    }
    // plain LXC containers in the lxcpath, marked with the org.nexcage.unmanaged annotation
    const { DEFAULT_LXCPATH, unmanagedLxc } = await import("./backends/lxc/unmanaged.ts");
    const config = await this.getConfig();
    try {
      out.push(...(await unmanagedLxc(config.lxc.lxcpath ?? DEFAULT_LXCPATH)));
    } catch (e) {
      log().warn(`list: lxc containers: ${(e as Error).message}`);
    }
    return out;
  }

  async kill(id: string, signal: number, all = false): Promise<void> {
    await this.locked(id, async ({ rec, backend, ctx, status }) => {
      if (status === "stopped" || status === "creating") throw errors.notRunning(id);
      await backend.kill(ctx, rec, signal, all);
    });
  }

  /** runc's rules: stopped and created containers go; running/paused ones only with force. */
  async delete(id: string, force = false): Promise<void> {
    validateId(id);
    let gone = false;
    await this.store.withLock(
      id,
      async () => {
        const found = await this.find(id);
        if (!found) {
          gone = true;
          // [network hook] an attachment whose container is gone (an earlier --force whose CNI DEL failed)
          if (force) return void (await (await this.network()).detach(id));
          throw errors.notFound(id);
        }
        const { rec, backend, ctx, status } = found;
        if ((status === "running" || status === "paused") && !force) {
          throw new NexcageError("badState", `cannot delete container ${id} that is not stopped: ${status}`);
        }
        await backend.delete(ctx, rec, force || status === "created");
        // [network hook] CNI DEL; with --force a failing plugin is reported and its record kept for a retry
        await (await this.network()).detach(id).catch((e) => {
          if (!force) throw e;
          log().warn(`delete ${id}: network: ${(e as Error).message}`);
        });
        this.store.remove(id);
        gone = true;
        if (!backend.capabilities.nativeHooks) {
          const spec = await loadSpec(rec.bundle).catch(() => undefined);
          if (spec) await runHooks("poststop", spec.hooks, hookState(rec, "stopped")).catch((e) => log().warn(String(e.message)));
        }
      },
      { removeAfter: () => gone },
    );
  }

  async pause(id: string): Promise<void> {
    await this.locked(id, async ({ rec, backend, ctx, status }) => {
      if (status !== "running") throw errors.notRunning(id);
      await backend.pause(ctx, rec);
    });
  }

  async resume(id: string): Promise<void> {
    await this.locked(id, async ({ rec, backend, ctx, status }) => {
      if (status !== "paused") throw new NexcageError("badState", `container not paused: ${id}`);
      await backend.resume(ctx, rec);
    });
  }

  async ps(id: string): Promise<number[]> {
    const { rec, backend, ctx, status } = await this.load(id);
    if (status === "stopped") return [];
    return backend.pids(ctx, rec);
  }

  async stats(id: string): Promise<CgroupStats & { network_interfaces?: NetworkInterfaceStats[] }> {
    const { rec, backend, ctx, status } = await this.load(id);
    if (status === "stopped") throw errors.notRunning(id);
    const stats = backend.stats(ctx, rec);
    // [network hook] rx/tx of the container's CNI interface, in runc's network_interfaces shape
    const net = (await this.network()).stats(id, rec.pid);
    return net ? { ...stats, network_interfaces: net } : stats;
  }

  async update(id: string, resources: unknown): Promise<void> {
    const res = parseResources(resources);
    await this.locked(id, async ({ rec, backend, ctx, status }) => {
      if (status === "stopped") throw errors.notRunning(id);
      await backend.update(ctx, rec, res);
    });
  }

  /** exec: returns the process's exit code (0 when detached). No lock: it may run for hours. */
  async exec(id: string, a: ExecArgs): Promise<number> {
    const { rec, backend, ctx, status } = await this.load(id);
    if (status === "stopped") throw new NexcageError("badState", `cannot exec in a stopped container: ${id}`);
    if (status === "paused") throw new NexcageError("badState", `cannot exec in a paused container: ${id}`);
    let proc: Process;
    if (a.processFile) {
      proc = parseProcess(await readJsonFile(resolve(a.processFile), "cannot load process"));
    } else {
      if (!a.args?.length) throw errors.usage("exec: a command or --process is required");
      const base = (await loadSpec(rec.bundle)).process as Process;
      proc = { ...base, args: a.args, terminal: a.tty ?? false };
      if (a.cwd) proc.cwd = a.cwd;
      if (a.env?.length) proc.env = mergeEnv(base.env ?? [], a.env);
      if (a.user) proc.user = { ...base.user, uid: a.user.uid, gid: a.user.gid };
    }
    const file = `${this.store.containerDir(id)}/exec-${process.pid}-${Date.now()}.json`;
    writeFileSync(file, JSON.stringify(proc), { mode: 0o600 });
    try {
      return await backend.exec(ctx, rec, {
        processFile: file,
        detach: a.detach ?? false,
        tty: proc.terminal ?? false,
        preserveFds: a.preserveFds ?? 0,
        ...(a.consoleSocket ? { consoleSocket: resolve(a.consoleSocket) } : {}),
        ...(a.pidFile ? { pidFile: resolve(a.pidFile) } : {}),
      });
    } finally {
      rmSync(file, { force: true });
    }
  }

  /**
   * create + start; in the foreground we become a subreaper so the container's init is reparented to us,
   * wait for it, forward SIGINT/SIGTERM/SIGHUP, then delete the container (runc run's behaviour).
   */
  async run(a: CreateArgs & { detach?: boolean; keep?: boolean }): Promise<number> {
    const { becomeSubreaper, pollExit } = await import("./native/libc.ts");
    if (!a.detach) {
      const spec: Spec = await loadSpec(resolve(a.bundle ?? "."));
      if (spec.process?.terminal && !a.consoleSocket) {
        throw new NexcageError("usage", "run: process.terminal is true: pass --detach --console-socket, or set terminal to false");
      }
      becomeSubreaper();
    }
    await this.create(a);
    try {
      await this.start(a.id);
    } catch (e) {
      await this.delete(a.id, true).catch(() => {});
      throw e;
    }
    if (a.detach) return 0;
    // as start left it: a VM's pid only exists once it runs
    const rec = this.store.read(a.id) as ContainerRecord;
    const forward = (sig: NodeJS.Signals) => () => {
      try {
        process.kill(rec.pid, sig);
      } catch {}
    };
    const sigs: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"];
    const handlers = sigs.map((s) => [s, forward(s)] as const);
    for (const [s, h] of handlers) process.on(s, h);
    let code: number | undefined;
    try {
      // the init, or the parent that reports its status (lxc's monitor); either is our child or orphan
      const waitPid = Number(rec.data?.waitPid ?? rec.pid);
      if (!(waitPid > 0)) throw new NexcageError("failure", `run: container ${a.id} has no process to wait for`);
      for (let delay = 2; code === undefined; delay = Math.min(delay * 2, 50)) {
        try {
          code = pollExit(waitPid);
        } catch {
          // not ours to reap (a Proxmox CT started by pct, a VM's QEMU): wait for it to go, status unknown
          if (!processAlive(waitPid, rec.pidStartTime)) {
            // an error for the caller (exit 255), but the run itself happened: say it without throwing
            const msg = `run: the exit status of ${a.id} is not available to nexcage (its process is not our child)`;
            log().warn(msg);
            writeSync(2, `nexcage: ${msg}\n`);
            code = 255;
          }
        }
        if (code === undefined) await Bun.sleep(delay);
      }
    } finally {
      for (const [s, h] of handlers) process.off(s, h);
    }
    if (!a.keep) await this.delete(a.id, true);
    return code;
  }

  /** the backend's own snapshot arrangement for a container, if it has one */
  async snapshotHooks(id: string): Promise<SnapshotHooks | undefined> {
    const { rec, backend, ctx } = await this.load(id);
    return backend.snapshotHooks?.(ctx, rec);
  }

  /** launch a stopped container's init again in place (after an in-place restore); `start` follows */
  async relaunch(id: string): Promise<void> {
    await this.locked(id, async ({ rec, backend, ctx, status }) => {
      if (status !== "stopped") throw new NexcageError("badState", `cannot relaunch container ${id}: it is ${status}`);
      if (!backend.relaunch) throw new NexcageError("unsupported", `the ${backend.name} backend cannot relaunch a container in place`);
      recordMade(rec, await backend.relaunch(ctx, rec));
      this.store.write(rec);
    });
  }

  /** container networking: CNI attachments, port forwards, egress policy (src/network) */
  async network(): Promise<Network> {
    const { Network } = await import("./network/index.ts");
    return (this.net ??= new Network(this));
  }

  /** snapshots of containers' root filesystems (src/snapshot) */
  async snapshots() {
    const { Snapshots } = await import("./snapshot/service.ts");
    return new Snapshots(this);
  }

  /** Parse a resources document given as text (the CLI reads it from a file or stdin). */
  static parseResourcesText(text: string): unknown {
    return parseJsonText(text, "invalid resources");
  }
}

/** what a backend made, into the record: the init pid (its start time guards against pid reuse) and the
 *  backend's data, with the pid to wait on where that is not the init */
function recordMade(rec: ContainerRecord, made: CreateResult): void {
  rec.pid = made.pid;
  rec.pidStartTime = pidStartTime(made.pid);
  const data = { ...rec.data, ...made.data, ...(made.waitPid ? { waitPid: made.waitPid } : {}) };
  if (Object.keys(data).length) rec.data = data;
}

function mergeEnv(base: string[], extra: string[]): string[] {
  const map = new Map(base.map((e) => [e.slice(0, e.indexOf("=")), e] as const));
  for (const e of extra) map.set(e.includes("=") ? e.slice(0, e.indexOf("=")) : e, e);
  return [...map.values()];
}

/** Written atomically: a client polling the pid file never reads a partial pid. */
export function writePidFile(path: string, pid: number): void {
  const abs = resolve(path);
  mkdirSync(dirname(abs), { recursive: true });
  const tmp = `${abs}.${process.pid}.tmp`;
  writeFileSync(tmp, String(pid));
  renameSync(tmp, abs);
}

/** runc's `list` shows the owner of the container's state directory. */
function ownerOf(dir: string): string {
  try {
    const uid = statSync(dir).uid;
    const line = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.split(":")[2] === String(uid));
    return line?.split(":")[0] ?? `#${uid}`;
  } catch {
    return "";
  }
}
