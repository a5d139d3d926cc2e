// Volumes on the double's storages, as pve-storage names and makes them: CT subvols on dir (a directory),
// btrfs (a subvolume) and zfspool (a dataset with refquota, through the zfs CLI); VM disks as raw files.
import { existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { die, run, storage, storagePath, volumePath, type Storage } from "./lib.ts";

/** next free `<prefix>-<vmid>-disk-N` on a storage */
function nextName(s: Storage, prefix: string, vmid: string, ext = ""): string {
  const taken = new Set<string>();
  if (s.type === "zfspool") {
    const r = run(["zfs", "list", "-H", "-o", "name", "-r", s.props.pool as string], { quiet: true });
    for (const l of r.out.split("\n")) taken.add(l.split("/").pop() as string);
  } else {
    const dir = join(storagePath(s), "images", vmid);
    if (existsSync(dir)) for (const f of readdirSync(dir)) taken.add(f);
  }
  for (let n = 0; ; n++) if (!taken.has(`${prefix}-${vmid}-disk-${n}${ext}`)) return `${prefix}-${vmid}-disk-${n}${ext}`;
}

/** allocate a CT root/mount-point volume of sizeGiB on storage id; returns the volid */
export function allocSubvol(id: string, vmid: string, sizeGiB: number, ctx: string): string {
  const s = storage(id, ctx);
  const name = nextName(s, "subvol", vmid);
  if (s.type === "zfspool") {
    const ds = `${s.props.pool}/${name}`;
    const quota = sizeGiB > 0 ? ["-o", `refquota=${sizeGiB * 1024 * 1024}k`] : [];
    const r = run(["zfs", "create", ...quota, ds], { quiet: true });
    if (r.code !== 0) die(`${ctx}zfs error: ${r.err.trim()}`);
    return `${id}:${name}`;
  }
  if (s.type !== "dir" && s.type !== "btrfs") die(`${ctx}storage '${id}' does not support container directories`);
  const path = join(storagePath(s), "images", vmid, name);
  mkdirSync(dirname(path), { recursive: true });
  if (s.type === "btrfs") {
    const r = run(["btrfs", "subvolume", "create", path], { quiet: true });
    if (r.code !== 0) die(`${ctx}btrfs error: ${r.err.trim()}`);
    if (sizeGiB > 0) run(["btrfs", "qgroup", "limit", `${sizeGiB}G`, path], { quiet: true });
  } else {
    mkdirSync(path);
  }
  return `${id}:${vmid}/${name}`;
}

/** a VM disk: a sparse raw file (dir/btrfs) or a zvol-less raw file under the pool mountpoint */
export function allocDisk(id: string, vmid: string, sizeGiB: number, ctx: string, importFrom?: string): string {
  const s = storage(id, ctx);
  if (s.type === "zfspool") die(`${ctx}the PVE double keeps VM disks on dir storages only`);
  const name = nextName(s, "vm", vmid, ".raw");
  const path = join(storagePath(s), "images", vmid, name);
  const src = importFrom && (importFrom.startsWith("/") ? importFrom : volumePath(importFrom, ctx));
  if (src && !existsSync(src)) die(`${ctx}import source '${importFrom}' does not exist`);
  mkdirSync(dirname(path), { recursive: true });
  if (src) {
    run(["cp", "--sparse=always", src, path]);
  } else {
    run(["truncate", "-s", `${sizeGiB}G`, path]);
  }
  return `${id}:${vmid}/${name}`;
}

export function volumeExists(volid: string): boolean {
  const [id] = volid.split(":");
  const s = storage(id as string, "");
  if (s.type === "zfspool") return run(["zfs", "list", "-H", `${s.props.pool}/${volid.split(":")[1]}`], { quiet: true }).code === 0;
  return existsSync(volumePath(volid));
}

export function freeVolume(volid: string): void {
  const [id, name] = volid.split(":") as [string, string];
  const s = storage(id, "");
  if (s.type === "zfspool") {
    // zfs-fuse reports a dataset busy for a moment after use
    for (let i = 0; i < 20 && run(["zfs", "destroy", "-r", `${s.props.pool}/${name}`], { quiet: true }).err.includes("busy"); i++) Bun.sleepSync(100);
    return;
  }
  const path = volumePath(volid);
  if (!existsSync(path)) return;
  if (s.type === "btrfs" && statSync(path).isDirectory()) {
    // its snapshots are the subvolumes <volume>@<name> next to it: they go first
    const base = path.split("/").pop() as string;
    for (const n of readdirSync(dirname(path))) if (n.startsWith(`${base}@`)) run(["btrfs", "subvolume", "delete", join(dirname(path), n)], { quiet: true });
    run(["btrfs", "subvolume", "delete", path], { quiet: true });
  }
  rmSync(path, { recursive: true, force: true });
  try {
    rmdirSync(dirname(path)); // images/<vmid> goes with its last volume
  } catch {}
}

/** the volid part of a rootfs/mpN/scsiN value ("local:100/subvol-100-disk-0,size=8G") */
export const volidOf = (value: string) => value.split(",")[0] as string;
