// Helpers shared by the OCI-engine backends (crun, runc): both leave an init process blocked on an exec
// fifo until `start`, so status is derived the same way crun does it.
import { existsSync, readFileSync } from "node:fs";
import type { Backend, ContainerRecord, Status } from "./types.ts";
import { NexcageError } from "../core/errors.ts";
import { cgroupPids, cgroupStats, isFrozen, processAlive } from "../core/proc.ts";

/** pid alive with the recorded start time → created (fifo still there) / paused (frozen) / running; else stopped. */
export function derivedStatus(rec: ContainerRecord, execFifo: string): Status {
  if (rec.creating) return "creating";
  if (!processAlive(rec.pid, rec.pidStartTime)) return "stopped";
  if (existsSync(execFifo)) return "created";
  return isFrozen(rec.pid) ? "paused" : "running";
}

export function readPidFile(path: string): number {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new NexcageError("failure", `backend wrote no pid file at ${path}`);
  }
  const pid = Number.parseInt(text.trim(), 10);
  if (!(pid > 0)) throw new NexcageError("failure", `backend pid file ${path} holds no pid: ${JSON.stringify(text)}`);
  return pid;
}

/** pids and stats straight from the cgroups of the container's init (both engines put it in its own cgroup) */
export const cgroupReadings: Pick<Backend, "pids" | "stats"> = {
  pids: (_ctx, rec) => cgroupPids(rec.pid),
  stats: (_ctx, rec) => cgroupStats(rec.pid),
};
