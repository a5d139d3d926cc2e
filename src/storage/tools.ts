// The storage tools nexcage drives (zfs, btrfs, mount, cp): one way to run them, and the ZFS steps that the
// volume drivers, the snapshot drivers and proxmox-lxc's pct snapshots all need.
import { mkdtempSync, rmSync } from "node:fs";
import { NexcageError } from "../core/errors.ts";

/** run a tool, stdin closed, output captured */
export async function capture(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

/** run a tool and require success; a failure is a storage error naming what was being done */
export async function must(argv: string[], what: string): Promise<string> {
  const r = await capture(argv);
  if (r.code !== 0) throw new NexcageError("storage", `${what}: ${r.err.trim() || `${argv[0]} exit ${r.code}`}`);
  return r.out;
}

/** something made readable at a temporary mount point, gone again on close() */
export async function tempView(what: string, mount: (mp: string) => Promise<unknown>, unmount: (mp: string) => Promise<void>) {
  const mp = mkdtempSync(`/tmp/nexcage-${what}-view-`);
  try {
    await mount(mp);
  } catch (e) {
    rmSync(mp, { recursive: true, force: true });
    throw e;
  }
  return {
    path: mp,
    close: async () => {
      await unmount(mp);
      rmSync(mp, { recursive: true, force: true });
    },
  };
}

/**
 * `zfs destroy` that tolerates what is already gone. A dataset can read "busy" for a moment after its last
 * use (zfs-fuse notably): that is retried briefly, anything else is an error.
 */
export async function zfsDestroy(name: string, opts: { recursive?: boolean } = {}): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const r = await capture(["zfs", "destroy", ...(opts.recursive ? ["-r"] : []), name]);
    if (r.code === 0 || /could not find|does not exist/.test(r.err)) return;
    if (!/busy/.test(r.err) || attempt >= 20) throw new NexcageError("storage", `zfs destroy ${name}: ${r.err.trim()}`);
    await Bun.sleep(100);
  }
}

/** cleanup of a temporary dataset (a clone): retried for 3 s, never fails the caller */
export async function zfsDestroyQuietly(name: string): Promise<void> {
  for (let i = 0; i < 30 && (await capture(["zfs", "destroy", name])).code !== 0; i++) await Bun.sleep(100);
}

/** a ZFS snapshot's files: snapshots are not mounted (and zfs-fuse has no .zfs dir), a read-only clone is */
export function zfsSnapshotView(snapshot: string, clone: string) {
  return tempView(
    "zfs",
    (mp) => must(["zfs", "clone", "-o", `mountpoint=${mp}`, "-o", "readonly=on", snapshot, clone], `zfs clone of ${snapshot} for reading`),
    () => zfsDestroyQuietly(clone),
  );
}
