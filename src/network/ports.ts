// Host port claims: one file per protocol and port under <root>/network/ports, created exclusively and
// naming the container, so two creates racing for 8080/tcp cannot both win and a refusal can say who holds
// it. A claim whose container has no attachment any more (a crash) is stale and taken over. A port a host
// process listens on is refused too: the forward would silently steal its traffic.
import { openSync, readdirSync, readFileSync, readlinkSync, rmSync, writeSync, closeSync } from "node:fs";
import { NexcageError } from "../core/errors.ts";
import type { PortMapping } from "./cni.ts";

export function claimName(m: Pick<PortMapping, "hostPort" | "protocol">): string {
  return `${m.protocol}-${m.hostPort}`;
}

/**
 * Claim every mapping for `id` or none: on a conflict the claims made so far are released and the error
 * names the holder. `holds(id)` says whether a container still owns its claims.
 */
export function claimPorts(dir: string, id: string, maps: PortMapping[], holds: (id: string, name: string) => boolean): void {
  const made: string[] = [];
  try {
    for (const m of maps) {
      const name = claimName(m);
      for (let attempt = 0; ; attempt++) {
        try {
          const fd = openSync(`${dir}/${name}`, "wx", 0o600);
          writeSync(fd, id);
          closeSync(fd);
          made.push(name);
          break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 3) throw e;
          const holder = readClaim(dir, name);
          if (holder === id) {
            made.push(name);
            break;
          }
          if (holder !== undefined && holds(holder, name)) {
            throw new NexcageError("exists", `host port ${m.hostPort}/${m.protocol} is already forwarded to container ${holder}`);
          }
          rmSync(`${dir}/${name}`, { force: true }); // stale: its container is gone
        }
      }
      const listener = hostListener(m);
      if (listener) throw new NexcageError("exists", `host port ${m.hostPort}/${m.protocol} is in use on the host by ${listener}`);
    }
  } catch (e) {
    for (const name of made) releaseClaim(dir, name, id);
    throw e;
  }
}

function readClaim(dir: string, name: string): string | undefined {
  try {
    return readFileSync(`${dir}/${name}`, "utf8");
  } catch {
    return undefined;
  }
}

/** only the owner's claim is removed (a stale claim taken over by someone else stays theirs) */
export function releaseClaim(dir: string, name: string, id: string): void {
  if (readClaim(dir, name) === id) rmSync(`${dir}/${name}`, { force: true });
}

/** every claim `id` holds */
export function claimsOf(dir: string, id: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => readClaim(dir, n) === id);
}

/**
 * A process of this network namespace bound to the port (listening TCP, bound UDP): "pid 123 (nginx)", or
 * "a socket" when no process can be found for it; undefined when the port is free.
 */
export function hostListener(m: Pick<PortMapping, "hostPort" | "protocol">): string | undefined {
  const inodes = new Set<string>();
  for (const v of ["", "6"]) {
    let text = "";
    try {
      text = readFileSync(`/proc/net/${m.protocol}${v}`, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const port = Number.parseInt((f[1] ?? "").split(":").at(-1) ?? "", 16);
      // TCP: LISTEN (0A) only; UDP: any bound socket (07 = unconnected)
      if (port !== m.hostPort || (m.protocol === "tcp" ? f[3] !== "0A" : f[3] !== "07")) continue;
      inodes.add(f[9] as string);
    }
  }
  if (!inodes.size) return undefined;
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const l = readlinkSync(`/proc/${pid}/fd/${fd}`);
        if (l.startsWith("socket:[") && inodes.has(l.slice(8, -1))) {
          const comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
          return `pid ${pid} (${comm})`;
        }
      } catch {}
    }
  }
  return "a socket of another process";
}
