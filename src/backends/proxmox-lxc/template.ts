// Templates for pct create. An OCI bundle's rootfs is packed into a vztmpl (tar.zst) on the template
// storage, named by a digest of the tree's listing (paths, sizes, mtimes, modes), so an unchanged bundle
// reuses its template and a changed one never gets a stale one.
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { NexcageError } from "../../core/errors.ts";
import type { PveCli } from "../../proxmox/cli.ts";

/** `pvesm path <volid>` */
export async function templatePath(pve: PveCli, volid: string): Promise<string> {
  return (await pve.ok("pvesm", ["path", volid])).trim();
}

export async function packTemplate(pve: PveCli, storage: string, bundle: string, rootPath: string): Promise<string> {
  const rootfs = resolve(bundle, rootPath);
  if (!existsSync(rootfs)) throw new NexcageError("invalidSpec", `root.path: ${rootfs}: no such directory`);
  const listing = Bun.spawnSync(["find", rootfs, "-printf", "%P\\0%s\\0%T@\\0%m\\0%l\\0"], { stdout: "pipe", stderr: "pipe" });
  if (listing.exitCode !== 0) throw new NexcageError("failure", `proxmox-lxc: cannot read ${rootfs}: ${listing.stderr.toString().trim()}`);
  const digest = new Bun.CryptoHasher("sha256").update(listing.stdout).digest("hex").slice(0, 16);
  const volid = `${storage}:vztmpl/nexcage-${digest}.tar.zst`;
  const path = await templatePath(pve, volid);
  if (existsSync(path)) return volid;
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  const tar = Bun.spawnSync(["tar", "--zstd", "--numeric-owner", "-C", rootfs, "-cpf", tmp, "."], { stdout: "ignore", stderr: "pipe" });
  if (tar.exitCode !== 0) {
    rmSync(tmp, { force: true });
    throw new NexcageError("storage", `proxmox-lxc: packing ${rootfs} into ${volid} failed: ${tar.stderr.toString().trim()}`);
  }
  renameSync(tmp, path);
  return volid;
}
