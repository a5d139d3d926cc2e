// A sandbox's own root filesystem, and whether its disk size can be a real limit. Where the server's data
// directory is on btrfs with quotas enabled, each rootfs is a subvolume with a qgroup limit (the kernel refuses
// writes past it; snapshots of it are instant, through the btrfs snapshot driver). Anywhere else it is a plain
// directory, which cannot hold a size: then the server refuses requests that name one instead of pretending.
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { NexcageError } from "../core/errors.ts";
import { mountOf } from "../snapshot/drivers.ts";
import { capture, must } from "../storage/tools.ts";

export type DiskMode = { kind: "btrfs-qgroup" } | { kind: "none"; why: string };

export async function diskMode(dataDir: string): Promise<DiskMode> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const m = mountOf(dataDir);
  if (m?.fstype !== "btrfs") return { kind: "none", why: `${dataDir} is on ${m?.fstype ?? "an unknown filesystem"}, not btrfs with quotas` };
  const q = await capture(["btrfs", "qgroup", "show", "-f", dataDir]);
  if (q.code !== 0) return { kind: "none", why: `btrfs quotas are not enabled on ${m.mountPoint} (btrfs quota enable ${m.mountPoint})` };
  return { kind: "btrfs-qgroup" };
}

/** an empty rootfs at dest: a subvolume limited to `bytes` where the storage can, else a directory */
export async function makeRootfs(dest: string, mode: DiskMode, bytes: number): Promise<void> {
  if (mode.kind === "none") {
    mkdirSync(dest, { mode: 0o755 });
    return;
  }
  await must(["btrfs", "subvolume", "create", dest], "sandbox rootfs");
  await limitRootfs(dest, mode, bytes);
}

/** (again) the size limit: a restore swaps in a new subvolume, which starts without one */
export async function limitRootfs(dest: string, mode: DiskMode, bytes: number): Promise<void> {
  if (mode.kind !== "btrfs-qgroup" || !existsSync(dest) || statSync(dest).ino !== 256) return;
  await must(["btrfs", "qgroup", "limit", String(bytes), dest], "sandbox disk limit");
}

/** src's tree into the (existing) dest: a reflink clone where the filesystem can, else a copy */
export async function fillRootfs(src: string, dest: string): Promise<void> {
  const p = Bun.spawn(["cp", "-a", "--reflink=auto", `${src}/.`, dest], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  const [err, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new NexcageError("storage", `filling the sandbox's rootfs: ${err.trim().split("\n").at(-1)}`);
}

/** a bundle and everything in it, subvolumes (the rootfs, read-only snapshots) deleted as subvolumes first */
export async function removeBundle(bundle: string): Promise<void> {
  if (!existsSync(bundle)) return;
  if (mountOf(bundle)?.fstype === "btrfs") {
    const found = await capture(["find", bundle, "-inum", "256", "-type", "d"]);
    // deepest first: a subvolume inside another goes before it
    const subvols = found.out.split("\n").filter((p) => p && p !== bundle).sort((a, b) => b.length - a.length);
    for (const s of subvols) await capture(["btrfs", "subvolume", "delete", s]);
  }
  rmSync(bundle, { recursive: true, force: true });
}
