// Shared e2e helpers: run the built binary, temp roots, waiting, host set-up.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
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

/**
 * A PVE double node under dir/pve (test/pve): wrappers for pct, qm, pvesh, pvesm bound to it, and the
 * proxmox section of a nexcage config pointing at them. nexcage itself sees only commands and paths.
 */
export function pveDouble(dir: string) {
  const root = join(dir, "pve");
  const bin = join(dir, "pve-bin");
  mkdirSync(join(root, "var/lib/vz/template/cache"), { recursive: true });
  // what a fresh node has: the `local` dir storage (tests append their own storages)
  mkdirSync(join(root, "etc/pve"), { recursive: true });
  writeFileSync(join(root, "etc/pve/storage.cfg"), `dir: local\n\tpath ${join(root, "var/lib/vz")}\n\tcontent iso,vztmpl,backup,rootdir,images\n\n`);
  mkdirSync(bin, { recursive: true });
  const tools = ["pct", "qm", "pvesh", "pvesm"] as const;
  for (const t of tools) {
    writeFileSync(join(bin, t), `#!/bin/sh\nPVE_DOUBLE_ROOT=${root} PVE_DOUBLE_BUN=${process.execPath} exec ${join(import.meta.dir, "../pve/bin", t)} "$@"\n`, { mode: 0o755 });
  }
  const proxmox = {
    lxcpath: join(root, "var/lib/lxc"),
    etcPve: join(root, "etc/pve"),
    rootfsSize: 0,
    ...Object.fromEntries(tools.map((t) => [t, join(bin, t)])),
  };
  /** run a double tool (failure injection through env) */
  const tool = (t: (typeof tools)[number], args: string[], env: Record<string, string> = {}) => {
    const r = Bun.spawnSync([join(bin, t), ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
    return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };
  return { root, bin, proxmox, tool };
}

/** A temp root plus a config file selecting `backend`, and a runner bound to them. */
export function runtimeFor(backend: string, extra: Record<string, unknown> = {}) {
  const dir = mkdtempSync(join(tmpdir(), `nexcage-${backend}-`));
  const config = join(dir, "config.json");
  const pve = backend.startsWith("proxmox") ? pveDouble(dir) : undefined;
  // lxc: a private lxcpath, so tests never touch the host's /var/lib/lxc; proxmox: the double
  writeFileSync(config, JSON.stringify({ defaultBackend: backend, lxc: { lxcpath: join(dir, "lxcpath") }, ...(pve ? { proxmox: pve.proxmox } : {}), ...extra }));
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
  /** the CLI with this runtime's --root and --config, for spawning it directly */
  const argv = [BIN, "--root", root, "--config", config];
  return { dir, root, config, nx, pve, argv };
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
