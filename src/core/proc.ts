// /proc and cgroup facts used to derive a container's status on every read (never trusted from disk).
import { existsSync, readFileSync } from "node:fs";

/** Start time (clock ticks since boot, /proc/<pid>/stat field 22), or 0 when the pid is gone. */
export function pidStartTime(pid: number): number {
  const s = readStat(pid);
  return s ? s.startTime : 0;
}

function readStat(pid: number): { state: string; startTime: number } | undefined {
  if (!(pid > 0)) return undefined;
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // comm may contain spaces and parens: fields start after the last ')'
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state); field 22 is rest[19]
  return { state: rest[0] ?? "", startTime: Number(rest[19] ?? 0) };
}

/** The process exists, is not a zombie, and is the same process we recorded (pid reuse guard). */
export function processAlive(pid: number, startTime: number): boolean {
  const s = readStat(pid);
  if (!s || s.state === "Z" || s.state === "X") return false;
  return startTime === 0 || s.startTime === startTime;
}

let v2MountCache: string | null | undefined;
/** Where the cgroup2 hierarchy is mounted (/sys/fs/cgroup on unified hosts, .../unified on hybrid ones). */
export function cgroup2Mount(): string | null {
  if (v2MountCache !== undefined) return v2MountCache;
  v2MountCache = null;
  try {
    for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
      const [pre, post] = line.split(" - ");
      if (post?.startsWith("cgroup2 ")) {
        v2MountCache = pre?.split(" ")[4] ?? null;
        break;
      }
    }
  } catch {}
  return v2MountCache;
}

export type CgroupMode = "unified" | "hybrid" | "legacy" | "none";

export function cgroupMode(): CgroupMode {
  const v2 = cgroup2Mount();
  const v1 = existsSync("/sys/fs/cgroup/memory") || existsSync("/sys/fs/cgroup/cpu");
  if (v2 === "/sys/fs/cgroup") return "unified";
  if (v2 && v1) return "hybrid";
  if (v1) return "legacy";
  return v2 ? "unified" : "none";
}

/** Controllers enabled on the cgroup2 hierarchy of a hybrid host (libcrun refuses unless empty). */
export function hybridV2Controllers(): string[] {
  const v2 = cgroup2Mount();
  if (!v2 || v2 === "/sys/fs/cgroup") return [];
  try {
    return readFileSync(`${v2}/cgroup.controllers`, "utf8").trim().split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

/** Parse /proc/<pid>/cgroup into controller → path ("" key for the v2 hierarchy). */
export function pidCgroups(pid: number): Map<string, string> {
  const out = new Map<string, string>();
  let text = "";
  try {
    text = readFileSync(`/proc/${pid}/cgroup`, "utf8");
  } catch {
    return out;
  }
  for (const line of text.split("\n")) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    for (const c of (m[1] ?? "").split(",")) out.set(c.replace(/^name=/, ""), m[2] ?? "/");
  }
  return out;
}

/** Is the cgroup of this pid frozen? (v1 freezer, else v2 cgroup.freeze) */
export function isFrozen(pid: number): boolean {
  const cg = pidCgroups(pid);
  const v1 = cg.get("freezer");
  if (v1 !== undefined && existsSync("/sys/fs/cgroup/freezer")) {
    try {
      const st = readFileSync(`/sys/fs/cgroup/freezer${v1}/freezer.state`, "utf8").trim();
      return st === "FROZEN" || st === "FREEZING";
    } catch {
      return false;
    }
  }
  const v2 = cg.get("");
  const mount = cgroup2Mount();
  if (v2 !== undefined && mount) {
    try {
      return readFileSync(`${mount}${v2}/cgroup.freeze`, "utf8").trim() === "1";
    } catch {}
  }
  return false;
}

/** All pids in the cgroup of `pid` (pids controller on v1, the unified hierarchy otherwise). */
export function cgroupPids(pid: number): number[] {
  const cg = pidCgroups(pid);
  const candidates: string[] = [];
  for (const ctrl of ["pids", "memory", "cpu", "freezer"]) {
    const p = cg.get(ctrl);
    if (p !== undefined && p !== "/") candidates.push(`/sys/fs/cgroup/${ctrl}${p}/cgroup.procs`);
  }
  const v2 = cg.get("");
  const mount = cgroup2Mount();
  if (v2 !== undefined && v2 !== "/" && mount) candidates.push(`${mount}${v2}/cgroup.procs`);
  for (const file of candidates) {
    try {
      const pids = readFileSync(file, "utf8").split("\n").filter(Boolean).map(Number);
      if (pids.length) return pids;
    } catch {}
  }
  return processAlive(pid, 0) ? [pid] : [];
}

/** runc's `events --stats` data (the subset cgroups give on v1 and v2), read from the cgroups of `pid`. */
/** a counter as cgroups print it; past 2^53 (v1's "unlimited" is 9223372036854771712) kept exact for JSON */
export type Counter = number | ReturnType<typeof JSON.rawJSON>;

export interface CgroupStats {
  cpu: { usage: { total: Counter; percpu: Counter[]; kernel: Counter; user: Counter } };
  memory: { usage: { usage: Counter; max: Counter; limit: Counter; failcnt: Counter }; raw: Record<string, Counter> };
  pids: { current: Counter; limit: Counter };
  blkio: Record<string, never>;
}

function counter(text: string | undefined): Counter {
  if (!text || !/^\d+$/.test(text)) return 0; // "max" (v2's unlimited) is reported as 0, like runc
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : JSON.rawJSON(text);
}

function readNum(file: string): Counter {
  try {
    return counter(readFileSync(file, "utf8").trim().split(/\s+/)[0]);
  } catch {
    return 0;
  }
}

function readKv(file: string): Record<string, Counter> {
  const out: Record<string, Counter> = {};
  try {
    for (const line of readFileSync(file, "utf8").split("\n")) {
      const [k, v] = line.split(/\s+/);
      if (k && v !== undefined) out[k] = counter(v);
    }
  } catch {}
  return out;
}

const num = (c: Counter | undefined): number => (typeof c === "number" ? c : Number(c?.rawJSON ?? 0));

export function cgroupStats(pid: number): CgroupStats {
  const cg = pidCgroups(pid);
  const v2path = cg.get("");
  const v2 = cgroup2Mount();
  const v1 = (ctrl: string) => (cg.get(ctrl) !== undefined && existsSync(`/sys/fs/cgroup/${ctrl}`) ? `/sys/fs/cgroup/${ctrl}${cg.get(ctrl)}` : undefined);
  const unified = v2 && v2path !== undefined ? `${v2}${v2path}` : undefined;
  const s: CgroupStats = {
    cpu: { usage: { total: 0, percpu: [], kernel: 0, user: 0 } },
    memory: { usage: { usage: 0, max: 0, limit: 0, failcnt: 0 }, raw: {} },
    pids: { current: 0, limit: 0 },
    blkio: {},
  };
  const cpu = v1("cpuacct");
  if (cpu) {
    // cpuacct.stat is in USER_HZ ticks (100/s); runc reports nanoseconds
    const st = readKv(`${cpu}/cpuacct.stat`);
    s.cpu.usage = {
      total: readNum(`${cpu}/cpuacct.usage`),
      percpu: readFileSync(`${cpu}/cpuacct.usage_percpu`, "utf8").trim().split(/\s+/).map(counter),
      kernel: num(st.system) * 1e7,
      user: num(st.user) * 1e7,
    };
  } else if (unified) {
    const st = readKv(`${unified}/cpu.stat`);
    s.cpu.usage = { total: num(st.usage_usec) * 1000, percpu: [], kernel: num(st.system_usec) * 1000, user: num(st.user_usec) * 1000 };
  }
  const mem = v1("memory");
  if (mem) {
    s.memory.usage = {
      usage: readNum(`${mem}/memory.usage_in_bytes`),
      max: readNum(`${mem}/memory.max_usage_in_bytes`),
      limit: readNum(`${mem}/memory.limit_in_bytes`),
      failcnt: readNum(`${mem}/memory.failcnt`),
    };
    s.memory.raw = readKv(`${mem}/memory.stat`);
  } else if (unified) {
    s.memory.usage = { usage: readNum(`${unified}/memory.current`), max: readNum(`${unified}/memory.peak`), limit: readNum(`${unified}/memory.max`), failcnt: readKv(`${unified}/memory.events`).max ?? 0 };
    s.memory.raw = readKv(`${unified}/memory.stat`);
  }
  const pids = v1("pids") ?? unified;
  if (pids) s.pids = { current: readNum(`${pids}/pids.current`), limit: readNum(`${pids}/pids.max`) };
  return s;
}
