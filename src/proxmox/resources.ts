// Resource arithmetic shared by the Proxmox backends.
import { NexcageError } from "../core/errors.ts";

/** how many CPUs a cpuset string names ("0-3,6" → 5) */
export function cpusetCount(s: string): number {
  let n = 0;
  for (const part of s.split(",").filter(Boolean)) {
    const [a, b] = part.split("-").map(Number) as [number, number | undefined];
    if (!Number.isInteger(a) || (b !== undefined && (!Number.isInteger(b) || b < a))) {
      throw new NexcageError("invalidSpec", `linux.resources.cpu.cpus: ${JSON.stringify(s)} is not a cpu list`);
    }
    n += b === undefined ? 1 : b - a + 1;
  }
  return n;
}

