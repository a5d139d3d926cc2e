// OCI config.json → LXC container config. Pure (the host facts it needs come in as arguments) so every
// row of the table is unit-tested. What LXC cannot honour is refused with the OCI field named, never dropped.
import type { Process, Resources, Spec } from "../../oci/spec.ts";
import { NexcageError } from "../../core/errors.ts";

/** where each cgroup controller lives on this host: its own v1 hierarchy, or the v2 one */
export interface CgroupLayout {
  v1: ReadonlySet<string>;
  v2: ReadonlySet<string>;
}

export interface HostDevice {
  type: "c" | "b";
  major: number;
  minor: number;
}

export interface TranslateInput {
  id: string;
  spec: Spec;
  /** absolute rootfs path */
  rootfs: string;
  /** host dir bind-mounted read-only at /dev/.nexcage: init, process, exec.fifo, paths, seccomp */
  runDir: string;
  cgroups: CgroupLayout;
  /** is a host path a directory (bind mounts: create=dir or create=file)? */
  isDir: (path: string) => boolean;
  /** the host device node at a path, if any (linux.devices are bound from the host) */
  hostDevice: (path: string) => HostDevice | undefined;
}

export interface Translation {
  /** the LXC config file's lines */
  config: string[];
  /** lines of runDir/paths for the mount hook ("s FILE VALUE" sysctl, "m PATH" masked, "r PATH" read-only) */
  paths: string[];
  /** LXC seccomp policy (v2 format), when the spec has one */
  seccomp?: string;
  /** namespaces the monitor joins before starting: "net=/proc/1/ns/net" ... */
  joinNamespaces: string[];
}

/** in the container: where runDir appears (a directory on LXC's /dev tmpfs) */
export const IN_CONTAINER_DIR = "/dev/.nexcage";

function refuse(field: string, why: string): never {
  throw new NexcageError("invalidSpec", `lxc backend cannot honour ${field}: ${why}`);
}

/** fstab fields escape whitespace as octal, as LXC's mount.entry parser expects */
const fstab = (s: string) => s.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}`);
const rel = (dest: string) => fstab(dest.replace(/^\/+/, ""));

export function translate(input: TranslateInput): Translation {
  const { spec, id } = input;
  const proc = spec.process as Process;
  const linux = spec.linux ?? {};
  const out: string[] = [];
  const set = (k: string, v: string | number) => out.push(`${k} = ${v}`);
  const paths: string[] = [];
  const joinNamespaces: string[] = [];

  // rootfs: LXC never owns it (destroy must never remove a bundle's files)
  set("lxc.rootfs.path", `dir:${input.rootfs}`);
  set("lxc.rootfs.managed", 0);
  if (spec.root?.readonly) set("lxc.rootfs.options", "ro");
  const prop = linux.rootfsPropagation ?? "";
  if (!["", "private", "rprivate"].includes(prop)) refuse("linux.rootfsPropagation", `${prop} (lxc keeps the rootfs private)`);
  if (linux.mountLabel) refuse("linux.mountLabel", "SELinux labels are not supported");
  for (const f of ["intelRdt", "personality", "memoryPolicy"]) if ((linux as Record<string, unknown>)[f] !== undefined) refuse(`linux.${f}`, "not supported");

  // namespaces: absent from the spec means shared with the host (lxc.namespace.keep)
  const nsTypes = new Map((linux.namespaces ?? []).map((n) => [n.type, n.path] as const));
  if (!nsTypes.has("mount")) refuse("linux.namespaces", "a mount namespace is required");
  if (nsTypes.get("mount")) refuse("linux.namespaces[mount].path", "joining an existing mount namespace is not supported");
  if (nsTypes.get("user")) refuse("linux.namespaces[user].path", "joining an existing user namespace is not supported");
  if (nsTypes.has("time")) refuse("linux.namespaces[time]", "time namespaces are not supported");
  const lxcNs: Record<string, string> = { network: "net", ipc: "ipc", uts: "uts", pid: "pid", cgroup: "cgroup", user: "user" };
  const keep: string[] = [];
  for (const [oci, lxc] of Object.entries(lxcNs)) {
    if (!nsTypes.has(oci as never)) keep.push(lxc);
    else if (nsTypes.get(oci as never)) {
      joinNamespaces.push(`${lxc}=${nsTypes.get(oci as never)}`);
      keep.push(lxc);
    }
  }
  if (keep.length) set("lxc.namespace.keep", keep.join(" "));

  // user namespace
  if (nsTypes.has("user")) {
    if (!linux.uidMappings?.length || !linux.gidMappings?.length) refuse("linux.uidMappings", "a user namespace needs uid and gid mappings");
    for (const m of linux.uidMappings) set("lxc.idmap", `u ${m.containerID} ${m.hostID} ${m.size}`);
    for (const m of linux.gidMappings) set("lxc.idmap", `g ${m.containerID} ${m.hostID} ${m.size}`);
  } else if (linux.uidMappings?.length || linux.gidMappings?.length) {
    refuse("linux.uidMappings", "mappings need a user namespace in linux.namespaces");
  }

  // hostname
  if (spec.hostname) {
    if (!nsTypes.has("uts") || nsTypes.get("uts")) refuse("hostname", "setting it needs a new uts namespace");
    set("lxc.uts.name", spec.hostname);
  } else if (nsTypes.has("uts") && !nsTypes.get("uts")) {
    set("lxc.uts.name", id.slice(0, 63));
  }
  if (spec.domainname) refuse("domainname", "lxc cannot set the NIS domain name");

  // console: the container's stdio is the monitor's (a pipe, or the pty sent to --console-socket)
  set("lxc.console.path", "none");
  set("lxc.tty.max", 0);
  set("lxc.autodev", 1);
  set("lxc.init.cmd", `${IN_CONTAINER_DIR}/init ${IN_CONTAINER_DIR}`);
  out.push(`lxc.mount.entry = ${fstab(input.runDir)} ${rel(IN_CONTAINER_DIR)} none bind,ro,create=dir 0 0`);
  // sysctls, then masked and read-only paths, as runc orders them: liblxc's own lxc.sysctl.* would come
  // after its mount hook (and fail on a read-only /proc/sys), and its start hook has no privileges left
  set("lxc.hook.mount", `${input.runDir}/init --mount-hook ${input.runDir}`);
  set("lxc.hook.version", 1);

  // mounts
  const auto: string[] = [];
  let ptys = false;
  (spec.mounts ?? []).forEach((m, i) => {
    const field = `mounts[${i}] (${m.destination})`;
    if (!m.destination.startsWith("/")) refuse(`${field}.destination`, "must be an absolute path");
    const opts = m.options ?? [];
    const type = m.type ?? (opts.includes("bind") || opts.includes("rbind") ? "bind" : "");
    const ro = opts.includes("ro");
    if (m.destination === "/proc" && type === "proc") return void auto.push("proc:rw");
    if (m.destination === "/sys" && type === "sysfs") return void auto.push(ro ? "sys:ro" : "sys:rw");
    if (m.destination === "/dev" && type === "tmpfs") return; // lxc.autodev
    if (m.destination === "/dev/pts" && type === "devpts") return void (ptys = true);
    if (type === "cgroup" || type === "cgroup2") {
      if (m.destination !== "/sys/fs/cgroup") refuse(`${field}`, "lxc mounts cgroups only at /sys/fs/cgroup");
      return void auto.push(ro ? "cgroup:ro" : "cgroup:mixed");
    }
    if (type === "bind") {
      if (!m.source) refuse(`${field}.source`, "a bind mount needs a source");
      const src = m.source;
      const kind = input.isDir(src) ? "create=dir" : "create=file";
      const o = opts.filter((x) => x !== "bind" && x !== "rbind");
      const flag = opts.includes("rbind") ? "rbind" : "bind";
      return void out.push(`lxc.mount.entry = ${fstab(src)} ${rel(m.destination)} none ${[flag, ...o, kind].join(",")} 0 0`);
    }
    if (!type) refuse(`${field}.type`, "is required for a non-bind mount");
    const o = [...opts, "create=dir"].join(",");
    out.push(`lxc.mount.entry = ${fstab(m.source || type)} ${rel(m.destination)} ${type} ${o} 0 0`);
  });
  if (auto.length) set("lxc.mount.auto", auto.join(" "));
  set("lxc.pty.max", ptys ? 1024 : 0);
  if (proc.terminal && !ptys) refuse("process.terminal", "a terminal needs a devpts mount at /dev/pts");
  for (const [k, v] of Object.entries(linux.sysctl ?? {})) {
    if (!/^[a-z0-9_.-]+$/i.test(k) || k.includes("..")) refuse(`linux.sysctl.${k}`, "not a sysctl name");
    if (/[\n]/.test(v)) refuse(`linux.sysctl.${k}`, "the value must be one line");
    paths.push(`s /proc/sys/${k.replace(/\./g, "/")} ${v}`);
  }
  for (const p of linux.maskedPaths ?? []) paths.push(`m ${p}`);
  for (const p of linux.readonlyPaths ?? []) paths.push(`r ${p}`);

  // process: the init reads args/env/cwd/umask from runDir/process; identity and limits are LXC's
  set("lxc.init.uid", proc.user.uid);
  set("lxc.init.gid", proc.user.gid);
  if (proc.user.additionalGids?.length) set("lxc.init.groups", proc.user.additionalGids.join(","));
  if (proc.noNewPrivileges) set("lxc.no_new_privs", 1);
  if (proc.oomScoreAdj !== undefined) set("lxc.proc.oom_score_adj", proc.oomScoreAdj);
  if (proc.selinuxLabel) refuse("process.selinuxLabel", "SELinux labels are not supported");
  set("lxc.apparmor.profile", proc.apparmorProfile || "unconfined");
  capabilities(proc, set);
  for (const [i, r] of (proc.rlimits ?? []).entries()) {
    const name = r.type.replace(/^RLIMIT_/, "").toLowerCase();
    if (!RLIMITS.has(name)) refuse(`process.rlimits[${i}].type`, `${r.type} is not a limit lxc knows`);
    set(`lxc.prlimit.${name}`, `${r.soft}:${r.hard}`);
  }

  // cgroups
  if (linux.cgroupsPath) {
    const dir = cgroupDir(linux.cgroupsPath);
    set("lxc.cgroup.dir.container", dir);
    set("lxc.cgroup.dir.monitor", `${dir}.monitor`);
  }
  for (const [k, v] of resourceKeys(linux.resources ?? {}, input.cgroups)) set(k, v);
  devices(linux.devices ?? [], input, out);

  const seccomp = linux.seccomp ? seccompPolicy(linux.seccomp as unknown as OciSeccomp) : undefined;
  if (seccomp) set("lxc.seccomp.profile", `${input.runDir}/seccomp`);
  return { config: out, paths, joinNamespaces, ...(seccomp ? { seccomp } : {}) };
}

/** the init's process file: terminal, cwd, umask, argc, argv..., env... */
export function processFields(proc: Process): string[] {
  const args = proc.args ?? [];
  return [proc.terminal ? "1" : "0", proc.cwd, proc.user.umask === undefined ? "-" : proc.user.umask.toString(8), String(args.length), ...args, ...(proc.env ?? [])];
}

const RLIMITS = new Set(["as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"]);

function capabilities(proc: Process, set: (k: string, v: string) => void): void {
  const caps = proc.capabilities;
  if (!caps) return set("lxc.cap.keep", "none");
  const norm = (l?: string[]) => [...new Set((l ?? []).map((c) => c.toLowerCase().replace(/^cap_/, "")))].sort();
  const bounding = norm(caps.bounding);
  // root's exec keeps its bounding set anyway; for any other user ambient capabilities would matter
  if (norm(caps.ambient).length && proc.user.uid !== 0) refuse("process.capabilities.ambient", "lxc cannot give a non-root process ambient capabilities");
  // LXC has one set: it becomes bounding, effective and permitted of a root init
  for (const f of ["effective", "permitted"] as const) {
    if (caps[f] && proc.user.uid === 0 && norm(caps[f]).join() !== bounding.join()) {
      refuse(`process.capabilities.${f}`, "must equal the bounding set (lxc applies one capability set)");
    }
  }
  set("lxc.cap.keep", bounding.length ? bounding.join(" ") : "none");
}

/** systemd-style "slice:prefix:name" → a path; cgroupfs paths as given, relative to the cgroup root */
export function cgroupDir(path: string): string {
  const parts = path.split(":");
  if (parts.length === 3 && !path.startsWith("/")) {
    const [slice, prefix, name] = parts as [string, string, string];
    return `${slice || "system.slice"}/${prefix}-${name}.scope`;
  }
  return path.replace(/^\/+/, "");
}

/** linux.resources as LXC cgroup keys, for the host's layout (create's config and update's writes) */
export function resourceKeys(r: Resources, cg: CgroupLayout): [string, string | number][] {
  const keys: [string, string | number][] = [];
  const set = (k: string, v: string | number) => void keys.push([k, v]);
  const where = (ctrl: string, field: string): 1 | 2 => {
    if (cg.v1.has(ctrl)) return 1;
    if (cg.v2.has(ctrl)) return 2;
    return refuse(field, `the ${ctrl} cgroup controller is not available on this host`);
  };
  const put = (ctrl: string, field: string, v1key: string | null, v2key: string | null, value: string | number) => {
    const v = where(ctrl, field);
    const key = v === 1 ? v1key : v2key;
    if (!key) refuse(field, `not available with the ${ctrl} controller on cgroup v${v}`);
    set(v === 1 ? `lxc.cgroup.${key}` : `lxc.cgroup2.${key}`, value);
  };
  const m = r.memory;
  if (m) {
    if (m.kernel !== undefined || m.kernelTCP !== undefined) refuse("linux.resources.memory.kernel", "kernel memory limits are deprecated and not supported");
    if (m.limit !== undefined) put("memory", "linux.resources.memory.limit", "memory.limit_in_bytes", "memory.max", m.limit < 0 ? (where("memory", "") === 1 ? -1 : "max") : m.limit);
    if (m.reservation !== undefined) put("memory", "linux.resources.memory.reservation", "memory.soft_limit_in_bytes", "memory.low", m.reservation);
    if (m.swap !== undefined) {
      if (where("memory", "linux.resources.memory.swap") === 1) set("lxc.cgroup.memory.memsw.limit_in_bytes", m.swap);
      else {
        if (m.limit === undefined && m.swap >= 0) refuse("linux.resources.memory.swap", "needs memory.limit on cgroup v2 (it is memory+swap)");
        set("lxc.cgroup2.memory.swap.max", m.swap < 0 ? "max" : m.swap - (m.limit ?? 0));
      }
    }
    if (m.swappiness !== undefined) put("memory", "linux.resources.memory.swappiness", "memory.swappiness", null, m.swappiness);
    if (m.disableOOMKiller) put("memory", "linux.resources.memory.disableOOMKiller", "memory.oom_control", null, 1);
  }
  const c = r.cpu;
  if (c) {
    if (c.shares) put("cpu", "linux.resources.cpu.shares", "cpu.shares", "cpu.weight", where("cpu", "") === 1 ? c.shares : sharesToWeight(c.shares));
    if (c.quota !== undefined || c.period !== undefined) {
      if (where("cpu", "linux.resources.cpu.quota") === 1) {
        if (c.quota !== undefined) set("lxc.cgroup.cpu.cfs_quota_us", c.quota);
        if (c.period !== undefined) set("lxc.cgroup.cpu.cfs_period_us", c.period);
      } else {
        set("lxc.cgroup2.cpu.max", `${c.quota === undefined || c.quota < 0 ? "max" : c.quota} ${c.period ?? 100000}`);
      }
    }
    if (c.cpus) put("cpuset", "linux.resources.cpu.cpus", "cpuset.cpus", "cpuset.cpus", c.cpus);
    if (c.mems) put("cpuset", "linux.resources.cpu.mems", "cpuset.mems", "cpuset.mems", c.mems);
    for (const f of ["realtimeRuntime", "realtimePeriod", "burst", "idle"] as const) if (c[f]) refuse(`linux.resources.cpu.${f}`, "not supported");
  }
  if (r.pids) put("pids", "linux.resources.pids.limit", "pids.max", "pids.max", r.pids.limit > 0 ? r.pids.limit : "max");
  if (r.blockIO && Object.keys(r.blockIO).length) refuse("linux.resources.blockIO", "block I/O limits are not supported");
  if (r.hugepageLimits?.length) refuse("linux.resources.hugepageLimits", "hugepage limits are not supported");
  if (r.network && Object.keys(r.network).length) refuse("linux.resources.network", "network class/priority is not supported");
  if (r.rdma && Object.keys(r.rdma).length) refuse("linux.resources.rdma", "not supported");
  for (const [k, v] of Object.entries(r.unified ?? {})) {
    if (!cg.v2.size) refuse("linux.resources.unified", "needs cgroup v2");
    set(`lxc.cgroup2.${k}`, v);
  }
  if (r.devices?.length) {
    const key = cg.v1.has("devices") ? "lxc.cgroup.devices" : "lxc.cgroup2.devices"; // v2: liblxc's eBPF program
    for (const d of r.devices) {
      const rule = `${d.type ?? "a"} ${d.major == null || d.major < 0 ? "*" : d.major}:${d.minor == null || d.minor < 0 ? "*" : d.minor} ${d.access || "rwm"}`;
      set(`${key}.${d.allow ? "allow" : "deny"}`, rule);
    }
    // what runc always allows after the spec's rules: the standard nodes a container needs to work at all
    for (const rule of DEFAULT_DEVICES) set(`${key}.allow`, rule);
  }
  return keys;
}

const DEFAULT_DEVICES = ["c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm"];

/** the OCI/runc conversion of cpu shares [2, 262144] to cgroup v2 weight [1, 10000] */
export function sharesToWeight(shares: number): number {
  return shares === 0 ? 0 : 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

type LinuxDevices = NonNullable<NonNullable<Spec["linux"]>["devices"]>;
function devices(list: LinuxDevices, input: TranslateInput, out: string[]): void {
  list.forEach((d, i) => {
    const field = `linux.devices[${i}] (${d.path})`;
    if (d.type !== "c" && d.type !== "b") refuse(field, `type ${d.type}: only c and b devices can be bound from the host`);
    const host = input.hostDevice(d.path);
    if (!host || host.type !== d.type || host.major !== d.major || host.minor !== d.minor) {
      refuse(field, `lxc binds device nodes from the host and there is no ${d.type} ${d.major}:${d.minor} at ${d.path}`);
    }
    out.push(`lxc.mount.entry = ${fstab(d.path)} ${rel(d.path)} none bind,create=file 0 0`);
  });
}

// ---- seccomp: OCI profile → LXC policy v2 ----

interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  listenerPath?: string;
  syscalls?: { names: string[]; action: string; errnoRet?: number; args?: { index: number; value: number; valueTwo?: number; op: string }[] }[];
}

const OPS: Record<string, string> = {
  SCMP_CMP_NE: "SCMP_CMP_NE",
  SCMP_CMP_LT: "SCMP_CMP_LT",
  SCMP_CMP_LE: "SCMP_CMP_LE",
  SCMP_CMP_EQ: "SCMP_CMP_EQ",
  SCMP_CMP_GE: "SCMP_CMP_GE",
  SCMP_CMP_GT: "SCMP_CMP_GT",
  SCMP_CMP_MASKED_EQ: "SCMP_CMP_MASKED_EQ",
};

function seccompAction(action: string, errnoRet: number | undefined, field: string): string {
  switch (action) {
    case "SCMP_ACT_ALLOW":
      return "allow";
    case "SCMP_ACT_ERRNO":
      return `errno ${errnoRet ?? 1}`;
    case "SCMP_ACT_KILL":
    case "SCMP_ACT_KILL_THREAD":
    case "SCMP_ACT_KILL_PROCESS":
      return "kill";
    case "SCMP_ACT_TRAP":
      return "trap";
    default:
      return refuse(field, `${action} is not an action lxc's seccomp supports`);
  }
}

export function seccompPolicy(s: OciSeccomp): string {
  if (s.listenerPath) refuse("linux.seccomp.listenerPath", "seccomp notification is not supported");
  if (s.flags?.length) refuse("linux.seccomp.flags", "seccomp filter flags are not supported");
  const def = seccompAction(s.defaultAction, s.defaultErrnoRet, "linux.seccomp.defaultAction");
  // allowlist/denylist only decide the implicit action; every rule below names its own
  const lines = ["2", def === "allow" ? "denylist" : `allowlist ${def}`, "[all]"];
  (s.syscalls ?? []).forEach((rule, i) => {
    const act = seccompAction(rule.action, rule.errnoRet, `linux.seccomp.syscalls[${i}].action`);
    if ((rule.args?.length ?? 0) > 6) refuse(`linux.seccomp.syscalls[${i}].args`, "at most 6 argument conditions");
    const args = (rule.args ?? []).map((a, j) => {
      const op = OPS[a.op] ?? refuse(`linux.seccomp.syscalls[${i}].args[${j}].op`, `unknown operator ${a.op}`);
      // LXC: [index,value,op,mask]; for MASKED_EQ the OCI value is the mask and valueTwo the datum
      return op === "SCMP_CMP_MASKED_EQ" ? `[${a.index},${a.valueTwo ?? 0},${op},${a.value}]` : `[${a.index},${a.value},${op},0]`;
    });
    for (const name of rule.names) lines.push([name, act, ...args].join(" "));
  });
  return `${lines.join("\n")}\n`;
}
