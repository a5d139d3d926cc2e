// The LXC container engine shared by the lxc and proxmox-lxc backends: an OCI container as an LXC container
// named `name` under `lxcpath`, with nexcage's run dir (bind-mounted read-only at /dev/.nexcage):
//   init (static nexcage-lxc-init), process, exec.fifo, paths (sysctl/masked/read-only), seccomp, lxc.log
// The monitor helper starts it in the foreground and exits with init's status (its pid goes to the
// caller's pid file); state's pid is the real init. Nothing here ever calls liblxc's destroy: that would
// remove the rootfs, which belongs to the bundle or to a Proxmox volume.
import { chmodSync, closeSync, constants, existsSync, linkSync, mkdirSync, openSync, readFileSync, readSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import type { ContainerRecord, ExecOptions, Status } from "../types.ts";
import { NexcageError } from "../../core/errors.ts";
import { cgroupPids, pidCgroups, processAlive } from "../../core/proc.ts";
// types only: the spec schemas (valibot) load where a process.json is parsed, not on every `state`
import type { Resources, Spec } from "../../oci/spec.ts";
import { derivedStatus } from "../common.ts";
import { hostCgroupLayout, hostDevice } from "./host.ts";
import { processFields, resourceKeys, translate, type Translation } from "./translate.ts";

export interface LxcTarget {
  /** the LXC container name */
  name: string;
  /** canonical lxcpath */
  lxcpath: string;
  /** nexcage's run dir for this container */
  runDir: string;
}

async function native() {
  return import("../../native/lxc.ts");
}

/** a probe's liblxc part: its version, or why it cannot load */
export async function probeLiblxc(r: { problems: string[]; details: Record<string, string> }): Promise<void> {
  try {
    r.details.liblxc = (await native()).lxcVersion();
  } catch (e) {
    r.problems.push((e as Error).message);
  }
}

/** liblxc needs the canonical path (its command socket name derives from it) */
export function canonicalLxcpath(path: string): string {
  mkdirSync(path, { recursive: true, mode: 0o755 });
  return realpathSync(path);
}

function writeAtomic(path: string, data: string | Uint8Array, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Translate the spec and fill the run dir (init, process, paths, seccomp, exec fifo). Returns the LXC
 * config lines: the lxc backend writes them as the container's config, proxmox-lxc adds them to pct's.
 */
export async function prepare(t: LxcTarget, spec: Spec, rootfs: string, debug: boolean): Promise<Translation> {
  if (!spec.process?.args?.length) throw new NexcageError("invalidSpec", "invalid config.json: process.args: is required");
  const tr = translate({ id: t.name, spec, rootfs, runDir: t.runDir, cgroups: hostCgroupLayout(), isDir, hostDevice });
  const dir = t.runDir;
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);
  writeFileSync(`${dir}/lxcpath`, t.lxcpath);
  // the static init, written once per content (a newer nexcage never links an older init) and hard-linked
  const bytes = (await native()).initBinary();
  const cached = `${dir}/../.init-${Bun.hash(bytes).toString(16)}`;
  if (!existsSync(cached)) writeAtomic(cached, bytes, 0o555);
  rmSync(`${dir}/init`, { force: true });
  linkSync(cached, `${dir}/init`);
  writeAtomic(`${dir}/process`, processFields(spec.process).map((f) => `${f}\0`).join(""), 0o644);
  writeAtomic(`${dir}/paths`, tr.paths.map((l) => `${l}\n`).join(""), 0o644);
  if (tr.seccomp) writeAtomic(`${dir}/seccomp`, tr.seccomp, 0o644);
  rmSync(`${dir}/exec.fifo`, { force: true });
  const { mkfifo } = await import("../../native/libc.ts");
  mkfifo(`${dir}/exec.fifo`, 0o622);
  chmodSync(`${dir}/exec.fifo`, 0o622);
  tr.config.push(`lxc.log.file = ${dir}/lxc.log`, `lxc.log.level = ${debug ? "DEBUG" : "WARN"}`);
  return tr;
}

/** the first ERROR lines of the container's lxc.log: the cause, not the cascade */
export function logErrors(t: LxcTarget): string {
  try {
    const lines = readFileSync(`${t.runDir}/lxc.log`, "utf8").split("\n").filter((l) => /ERROR/.test(l));
    return lines.slice(0, 3).map((l) => l.replace(/^.*? ERROR\s+/, "")).join("; ");
  } catch {
    return "";
  }
}

/** Start through the monitor helper and wait until init runs (blocked on the exec fifo). */
export async function launch(t: LxcTarget, consoleSocket: string | undefined, joinNamespaces: string[]): Promise<{ pid: number; monitor: number }> {
  const n = await native();
  const monitor = n.spawnMonitor(t.name, t.lxcpath, consoleSocket, joinNamespaces);
  const { pollExit } = await import("../../native/libc.ts");
  const deadline = Date.now() + 60_000;
  for (let delay = 1; ; delay = Math.min(delay * 2, 20)) {
    const st = n.lxcState(t.name, t.lxcpath);
    if (st.state === "RUNNING" && st.pid > 0) return { pid: st.pid, monitor };
    const code = pollExit(monitor);
    if (code !== undefined) {
      const why = logErrors(t);
      throw new NexcageError("failure", `lxc could not start container ${t.name} (exit ${code})${why ? `: ${why}` : ""}`);
    }
    if (Date.now() > deadline) {
      try {
        process.kill(monitor, "SIGKILL");
      } catch {}
      throw new NexcageError("failure", `lxc did not start container ${t.name} within 60 s`);
    }
    await Bun.sleep(delay);
  }
}

/** Wait for a container someone else started (pct start) to run; its init pid. */
export async function waitRunning(t: LxcTarget, timeoutMs = 60_000): Promise<number> {
  const n = await native();
  const deadline = Date.now() + timeoutMs;
  for (let delay = 1; Date.now() < deadline; delay = Math.min(delay * 2, 20)) {
    const st = n.lxcState(t.name, t.lxcpath);
    if (st.state === "RUNNING" && st.pid > 0) return st.pid;
    await Bun.sleep(delay);
  }
  const why = logErrors(t);
  throw new NexcageError("failure", `container ${t.name} did not start${why ? `: ${why}` : ""}`);
}

/** `start`: read the exec fifo, which lets the init exec the OCI process */
export async function release(t: LxcTarget, rec: ContainerRecord): Promise<void> {
  const fifo = `${t.runDir}/exec.fifo`;
  // O_NONBLOCK: if the init died, a blocking open would wait forever for a writer
  const fd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const buf = Buffer.alloc(1);
    const deadline = Date.now() + 10_000;
    for (;;) {
      let got = 0;
      try {
        got = readSync(fd, buf, 0, 1, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
      }
      if (got === 1) break;
      if (!processAlive(rec.pid, rec.pidStartTime)) throw new NexcageError("failure", "container init exited before start");
      if (Date.now() > deadline) throw new NexcageError("failure", "container init did not answer on the exec fifo");
      await Bun.sleep(1);
    }
  } finally {
    closeSync(fd);
  }
  rmSync(fifo, { force: true });
}

export function signal(rec: ContainerRecord, sig: number, all: boolean): void {
  for (const pid of all ? cgroupPids(rec.pid) : [rec.pid]) {
    try {
      process.kill(pid, sig);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
    }
  }
}

function gone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0] === "Z";
  } catch {
    return true;
  }
}

/** Kill (with force) and wait until liblxc reports STOPPED and the monitor is gone; the run dir goes. */
export async function stopAndClean(t: LxcTarget, rec: ContainerRecord, force: boolean): Promise<void> {
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
    // the monitor cleans up cgroups and its command socket before its files may go
    const n = await native();
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && (n.lxcState(t.name, t.lxcpath).state !== "STOPPED" || (monitor > 0 && !gone(monitor)))) await Bun.sleep(2);
  }
  rmSync(t.runDir, { recursive: true, force: true });
}

export async function freeze(t: LxcTarget, thaw: boolean): Promise<void> {
  (await native()).lxcFreeze(t.name, t.lxcpath, thaw);
}

/** exec through liblxc's attach; the exit code (or 0 detached) */
export async function attach(t: LxcTarget, o: ExecOptions): Promise<number> {
  const { parseProcess } = await import("../../oci/spec.ts");
  const proc = parseProcess(JSON.parse(readFileSync(o.processFile, "utf8")));
  const pid = (await native()).lxcAttach(t.name, t.lxcpath, {
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
}

/** linux.resources → the same keys create sets, written to the init's cgroups */
export function updateResources(rec: ContainerRecord, resources: Resources): void {
  const cg = pidCgroups(rec.pid);
  const unified = existsSync("/sys/fs/cgroup/unified") ? "/sys/fs/cgroup/unified" : "/sys/fs/cgroup";
  for (const [key, value] of resourceKeys(resources, hostCgroupLayout())) {
    const v2 = key.startsWith("lxc.cgroup2.");
    const file = key.replace(/^lxc\.cgroup2?\./, "");
    const ctrl = file.split(".")[0] as string;
    const base = v2 ? `${unified}${cg.get("") ?? ""}` : `/sys/fs/cgroup/${ctrl}${cg.get(ctrl) ?? ""}`;
    try {
      writeFileSync(`${base}/${file}`, String(value));
    } catch (e) {
      throw new NexcageError("failure", `update: cannot set ${file} to ${value}: ${(e as Error).message}`);
    }
  }
}

export function status(t: LxcTarget, rec: ContainerRecord): Status {
  return derivedStatus(rec, `${t.runDir}/exec.fifo`);
}
