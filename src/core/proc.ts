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
