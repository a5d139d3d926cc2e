// The container's network namespace, pinned by a bind mount under nexcage's root for as long as it is
// attached: CNI DEL then always finds it, even after the container's processes died, so the veth, the
// bridge plugin's masquerade rules and the bandwidth plugin's devices are removed by the plugins that made
// them instead of vanishing half-way with the namespace (the CNI bridge plugin cannot clean its masquerade
// rules for a namespace that is gone).
import { closeSync, mkdirSync, openSync, rmSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { NexcageError } from "../core/errors.ts";

let nsfsDev: number | undefined;

/** Is `path` a network namespace (an nsfs file: /proc/PID/ns/net or a bind mount of one)? */
export function isNetns(path: string): boolean {
  try {
    nsfsDev ??= statSync("/proc/self/ns/net").dev;
    return statSync(path).dev === nsfsDev;
  } catch {
    return false;
  }
}

function run(argv: string[]): { ok: boolean; err: string } {
  const r = Bun.spawnSync(argv, { stdout: "ignore", stderr: "pipe" });
  return { ok: r.exitCode === 0, err: r.stderr.toString().trim() };
}

export function pin(source: string, target: string): void {
  if (!isNetns(source)) throw new NexcageError("failure", `cannot attach a network: ${source} is not a network namespace (the container's init is gone?)`);
  mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
  closeSync(openSync(target, "a", 0o600));
  const r = run(["mount", "--bind", source, target]);
  if (!r.ok) throw new NexcageError("failure", `cannot pin network namespace ${source} at ${target}: ${r.err}`);
}

/** Idempotent: unmounts when mounted (lazily: a reader such as `ip netns` may hold it) and removes the file. */
export function unpin(target: string): void {
  if (isNetns(target)) {
    const r = run(["umount", "-l", target]);
    if (!r.ok && isNetns(target)) throw new NexcageError("failure", `cannot unpin network namespace ${target}: ${r.err}`);
  }
  rmSync(target, { force: true });
}

/** Run a command inside a network namespace (nsenter --net: /sys and the mount namespace stay as they are). */
export function inNetns(netns: string, argv: string[]): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync(["nsenter", `--net=${netns}`, ...argv], { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}
