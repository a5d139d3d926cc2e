// LXC through liblxc (src/native/lxc.ts). Layout per container:
//   <lxcpath>/<id>/config        the translated LXC config (and lxc's own runtime files)
//   <root>/lxc/<id>/             run dir, bind-mounted read-only at /dev/.nexcage in the container:
//       init (static nexcage-lxc-init), process, exec.fifo, paths (masked/read-only), seccomp, lxc.log
// The monitor helper starts the container in the foreground and exits with init's status; its pid goes
// to the caller's pid file. state's pid is the real init. Delete never calls liblxc's destroy: that would
// remove the rootfs, which belongs to the bundle.
import { chmodSync, closeSync, existsSync, linkSync, mkdirSync, openSync, readFileSync, readSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { constants } from "node:fs";
import { resolve } from "node:path";
import type { Backend, BackendContext, ContainerRecord, ProbeResult, Status } from "../types.ts";
import { NexcageError } from "../../core/errors.ts";
import { cgroupPids, pidCgroups, processAlive } from "../../core/proc.ts";
import { parseProcess, type Resources } from "../../oci/spec.ts";
import { cgroupReadings, derivedStatus } from "../common.ts";
import { hostCgroupLayout, hostDevice } from "./host.ts";
import { processFields, resourceKeys, translate } from "./translate.ts";
import { CONFIG_MARK, DEFAULT_LXCPATH } from "./unmanaged.ts";


async function native() {
  return import("../../native/lxc.ts");
}

/** liblxc needs the canonical path (its command socket name derives from it) */
export function canonicalLxcpath(path: string | undefined): string {
  const p = path ?? DEFAULT_LXCPATH;
  mkdirSync(p, { recursive: true, mode: 0o755 });
  return realpathSync(p);
}

const runDir = (ctx: BackendContext, id: string) => `${ctx.backendRoot}/${id}`;
/** from the record; a half-created one has none yet, but its run dir says where its config went */
function lxcpathOf(ctx: BackendContext, rec: ContainerRecord): string {
  if (rec.data?.lxcpath) return String(rec.data.lxcpath);
  try {
    return readFileSync(`${runDir(ctx, rec.id)}/lxcpath`, "utf8");
  } catch {
    return DEFAULT_LXCPATH;
  }
}

function writeAtomic(path: string, data: string | Uint8Array, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/** the static init, written once per backend root and hard-linked into each run dir */
async function placeInit(ctx: BackendContext, dir: string): Promise<void> {
  const bytes = (await native()).initBinary();
  // named by content: a newer nexcage never links an older init
  const cached = `${ctx.backendRoot}/.init-${Bun.hash(bytes).toString(16)}`;
  if (!existsSync(cached)) writeAtomic(cached, bytes, 0o555);
  linkSync(cached, `${dir}/init`);
}

function lastLogError(dir: string): string {
  try {
    const lines = readFileSync(`${dir}/lxc.log`, "utf8").split("\n").filter((l) => /ERROR/.test(l));
    return lines.slice(0, 3).map((l) => l.replace(/^.*? ERROR\s+/, "")).join("; ");
  } catch {
    return "";
  }
}

function gone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0] === "Z";
  } catch {
    return true;
  }
}

export const lxcBackend: Backend = {
  name: "lxc",
  capabilities: { nativeHooks: false, pause: true, update: true, exec: true },

  async probe(ctx): Promise<ProbeResult> {
    const r: ProbeResult = { backend: "lxc", ok: true, problems: [], details: { stateRoot: ctx.backendRoot } };
    try {
      r.details.liblxc = (await native()).lxcVersion();
    } catch (e) {
      r.problems.push((e as Error).message);
    }
    r.ok = r.problems.length === 0;
    return r;
  },

  async create(ctx, o) {
    const n = await native();
    const lxcpath = canonicalLxcpath(o.config.lxc.lxcpath);
    const confDir = `${lxcpath}/${o.id}`;
    // a plain LXC container of that name is not ours to overwrite
    if (existsSync(confDir)) throw new NexcageError("exists", `an LXC container named ${o.id} already exists in ${lxcpath}`);
    if (o.spec.process?.terminal && !o.consoleSocket) throw new NexcageError("usage", "process.terminal is true: a --console-socket is required");
    const dir = runDir(ctx, o.id);
    const tr = translate({
      id: o.id,
      spec: o.spec,
      rootfs: realpathOr(resolve(o.bundle, o.spec.root?.path ?? "rootfs")),
      runDir: dir,
      cgroups: hostCgroupLayout(),
      isDir: (p) => {
        try {
          return statSync(p).isDirectory();
        } catch {
          return false;
        }
      },
      hostDevice,
    });
    if (!o.spec.process?.args?.length) throw new NexcageError("invalidSpec", "invalid config.json: process.args: is required");

    mkdirSync(ctx.backendRoot, { recursive: true, mode: 0o711 });
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    writeFileSync(`${dir}/lxcpath`, lxcpath);
    await placeInit(ctx, dir);
    writeAtomic(`${dir}/process`, processFields(o.spec.process).map((f) => `${f}\0`).join(""), 0o644);
    writeAtomic(`${dir}/paths`, tr.paths.map((l) => `${l}\n`).join(""), 0o644);
    if (tr.seccomp) writeAtomic(`${dir}/seccomp`, tr.seccomp, 0o644);
    const { mkfifo } = await import("../../native/libc.ts");
    mkfifo(`${dir}/exec.fifo`, 0o622);
    chmodSync(`${dir}/exec.fifo`, 0o622);

    mkdirSync(confDir, { mode: 0o750 });
    const config = [...tr.config, `lxc.log.file = ${dir}/lxc.log`, `lxc.log.level = ${ctx.debug ? "DEBUG" : "WARN"}`];
    writeAtomic(`${confDir}/config`, `${CONFIG_MARK} from ${o.bundle}/config.json\n${config.join("\n")}\n`, 0o640);

    const monitor = n.spawnMonitor(o.id, lxcpath, o.spec.process.terminal ? o.consoleSocket : undefined, tr.joinNamespaces);
    const { pollExit } = await import("../../native/libc.ts");
    const deadline = Date.now() + 60_000;
    for (let delay = 1; ; delay = Math.min(delay * 2, 20)) {
      const st = n.lxcState(o.id, lxcpath);
      if (st.state === "RUNNING" && st.pid > 0) return { pid: st.pid, waitPid: monitor, data: { lxcpath } };
      const code = pollExit(monitor);
      if (code !== undefined) {
        const why = lastLogError(dir);
        throw new NexcageError("failure", `lxc could not start container ${o.id} (exit ${code})${why ? `: ${why}` : ""}`);
      }
      if (Date.now() > deadline) {
        try {
          process.kill(monitor, "SIGKILL");
        } catch {}
        throw new NexcageError("failure", `lxc did not start container ${o.id} within 60 s`);
      }
      await Bun.sleep(delay);
    }
  },

  async start(ctx, rec) {
    // O_NONBLOCK: if the init died, a blocking open would wait forever for a writer
    const fifo = `${runDir(ctx, rec.id)}/exec.fifo`;
    const fd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const buf = Buffer.alloc(1);
      const deadline = Date.now() + 10_000;
      for (;;) {
        let n = 0;
        try {
          n = readSync(fd, buf, 0, 1, null);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
        }
        if (n === 1) break;
        if (!processAlive(rec.pid, rec.pidStartTime)) throw new NexcageError("failure", "container init exited before start");
        if (Date.now() > deadline) throw new NexcageError("failure", "container init did not answer on the exec fifo");
        await Bun.sleep(1);
      }
    } finally {
      closeSync(fd);
    }
    rmSync(fifo, { force: true });
  },

  async kill(_ctx, rec, signal, all) {
    const pids = all ? cgroupPids(rec.pid) : [rec.pid];
    for (const pid of pids) {
      try {
        process.kill(pid, signal);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
      }
    }
  },

  async delete(ctx, rec, force) {
    const lxcpath = lxcpathOf(ctx, rec);
    const monitor = Number(rec.data?.waitPid ?? 0);
    if (rec.pid > 0 && processAlive(rec.pid, rec.pidStartTime)) {
      if (!force) throw new NexcageError("badState", `cannot delete container ${rec.id} that is not stopped`);
      for (const pid of [rec.pid, ...cgroupPids(rec.pid)]) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
      }
    }
    if (monitor > 0 || rec.pid > 0) {
      // wait for the monitor to clean up (cgroups, command socket) before its files go
      const n = await native();
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && (n.lxcState(rec.id, lxcpath).state !== "STOPPED" || (monitor > 0 && !gone(monitor)))) {
        await Bun.sleep(2);
      }
    }
    rmSync(`${lxcpath}/${rec.id}`, { recursive: true, force: true });
    rmSync(runDir(ctx, rec.id), { recursive: true, force: true });
  },

  async pause(ctx, rec) {
    (await native()).lxcFreeze(rec.id, lxcpathOf(ctx, rec), false);
  },

  async resume(ctx, rec) {
    (await native()).lxcFreeze(rec.id, lxcpathOf(ctx, rec), true);
  },

  async exec(ctx, rec, o) {
    const proc = parseProcess(JSON.parse(readFileSync(o.processFile, "utf8")));
    const n = await native();
    const pid = n.lxcAttach(rec.id, lxcpathOf(ctx, rec), {
      cwd: proc.cwd,
      ...(proc.user.umask !== undefined ? { umask: proc.user.umask } : {}),
      args: proc.args ?? [],
      env: proc.env ?? [],
      uid: proc.user.uid,
      gid: proc.user.gid,
      groups: proc.user.additionalGids ?? [],
      ...(o.tty && o.consoleSocket ? { consoleSocket: o.consoleSocket } : {}),
    });
    if (o.pidFile) {
      const { writePidFile } = await import("../../runtime.ts");
      writePidFile(o.pidFile, pid);
    }
    if (o.detach) return 0;
    const { pollExit } = await import("../../native/libc.ts");
    const sigs: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH"];
    const handlers = sigs.map((s) => [s, () => void process.kill(pid, s)] as const);
    for (const [s, h] of handlers) process.on(s, h);
    try {
      let code: number | undefined;
      for (let delay = 1; (code = pollExit(pid)) === undefined; delay = Math.min(delay * 2, 50)) await Bun.sleep(delay);
      return code;
    } finally {
      for (const [s, h] of handlers) process.off(s, h);
    }
  },

  async update(_ctx, rec, resources) {
    // the same keys create would set, written to the init's cgroups (liblxc's set_cgroup_item does the same)
    const cg = pidCgroups(rec.pid);
    for (const [key, value] of resourceKeys(resources as Resources, hostCgroupLayout())) {
      const v2 = key.startsWith("lxc.cgroup2.");
      const file = key.replace(/^lxc\.cgroup2?\./, "");
      const ctrl = file.split(".")[0] as string;
      const path = v2 ? `/sys/fs/cgroup/unified${cg.get("") ?? ""}` : `/sys/fs/cgroup/${ctrl}${cg.get(ctrl) ?? ""}`;
      const base = v2 && !existsSync("/sys/fs/cgroup/unified") ? `/sys/fs/cgroup${cg.get("") ?? ""}` : path;
      try {
        writeFileSync(`${base}/${file}`, String(value));
      } catch (e) {
        throw new NexcageError("failure", `update: cannot set ${file} to ${value}: ${(e as Error).message}`);
      }
    }
  },

  status(ctx: BackendContext, rec: ContainerRecord): Status {
    return derivedStatus(rec, `${runDir(ctx, rec.id)}/exec.fifo`);
  },

  ...cgroupReadings,
};

function realpathOr(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    throw new NexcageError("invalidSpec", `root.path: ${p}: no such directory`);
  }
}
