// Shared e2e helpers: run the built binary, temp roots, waiting, host set-up.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const BIN = resolve(process.env.NEXCAGE_BIN ?? join(import.meta.dir, "../../dist/nexcage"));

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** The crun backend needs the hybrid-cgroup fix on hosts like CI's (scripts/setup.sh applies it too). */
export function hostSetup(): void {
  const ctrl = "/sys/fs/cgroup/unified/cgroup.controllers";
  if (!existsSync(ctrl)) return;
  for (const c of readFileSync(ctrl, "utf8").trim().split(/\s+/).filter(Boolean)) {
    Bun.spawnSync(["sh", "-c", `mkdir -p /sys/fs/cgroup/${c} && (mountpoint -q /sys/fs/cgroup/${c} || mount -t cgroup -o ${c} cgroup /sys/fs/cgroup/${c})`]);
  }
}

/** A temp root plus a config file selecting `backend`, and a runner bound to them. */
export function runtimeFor(backend: string) {
  const dir = mkdtempSync(join(tmpdir(), `nexcage-${backend}-`));
  const config = join(dir, "config.json");
  // lxc: a private lxcpath, so tests never touch the host's /var/lib/lxc
  writeFileSync(config, JSON.stringify({ defaultBackend: backend, lxc: { lxcpath: join(dir, "lxcpath") } }));
  const root = join(dir, "root");
  const nx = (args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}): Result => {
    const r = Bun.spawnSync([BIN, "--root", root, "--config", config, ...args], {
      stdin: opts.stdin !== undefined ? Buffer.from(opts.stdin) : "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, ...opts.env },
    });
    return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };
  return { dir, root, config, nx };
}

export async function waitFor(pred: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

export function pidAlive(pid: number): boolean {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/\) [ZX] /.test(st);
  } catch {
    return false;
  }
}

export function parentPid(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ")[1]);
  } catch {
    return 0;
  }
}
