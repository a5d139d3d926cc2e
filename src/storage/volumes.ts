// Container volumes on a storage, named and sized the way Proxmox does it (subvol-<vmid>-disk-N):
//   zfspool  a dataset <pool>/<name> with refquota = size, through libzfs_core (the zfs CLI where
//            libzfs_core cannot initialise, e.g. zfs-fuse hosts or no kernel module)
//   btrfs    a subvolume <path>/images/<vmid>/<name> (size recorded by Proxmox, qgroups are the admin's)
//   dir      a directory <path>/images/<vmid>/<name>
// Every driver states what it guarantees: quota (zfs refquota), instant snapshots (zfs, btrfs), none (dir).
import { existsSync, mkdirSync, rmdirSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import { NexcageError } from "../core/errors.ts";
import { capture, zfsDestroy } from "./tools.ts";

export interface StorageInfo {
  /** Proxmox storage id (local, local-zfs ...) */
  id: string;
  type: string;
  /** dir/btrfs */
  path?: string;
  /** zfspool */
  pool?: string;
  mountpoint?: string;
}

export interface Volume {
  /** Proxmox volume id: local-zfs:subvol-100-disk-0, local:100/subvol-100-disk-0 */
  volid: string;
  /** where its files are on the host */
  path: string;
  /** how it was made: "libzfs_core", "zfs-cli", "btrfs", "dir" */
  via: string;
}

export interface VolumeDriver {
  readonly type: string;
  readonly guarantees: string;
  create(vmid: string, disk: number, sizeGiB: number): Promise<Volume>;
  destroy(vol: Volume): Promise<void>;
}

const storageError = (msg: string) => new NexcageError("storage", msg);

class ZfsDriver implements VolumeDriver {
  readonly type = "zfspool";
  readonly guarantees = "refquota enforces the size; snapshots are instant and atomic";
  constructor(private readonly s: StorageInfo) {}

  async create(vmid: string, disk: number, sizeGiB: number): Promise<Volume> {
    const name = `subvol-${vmid}-disk-${disk}`;
    const ds = `${this.s.pool}/${name}`;
    const refquota = BigInt(sizeGiB) * 1024n * 1024n * 1024n;
    const { zfsCoreProblem, lzcCreate } = await import("../native/zfs.ts");
    let via = "zfs-cli";
    if (!zfsCoreProblem()) {
      const rc = lzcCreate(ds, sizeGiB > 0 ? { refquota } : {});
      if (rc === 17) throw storageError(`zfs: dataset ${ds} already exists`);
      if (rc !== 0) throw storageError(`zfs: lzc_create ${ds} failed with errno ${rc}`);
      // libzfs_core mounts nothing
      const m = await capture(["zfs", "mount", ds]);
      if (m.code !== 0) throw storageError(`zfs mount ${ds}: ${m.err.trim()}`);
      via = "libzfs_core";
    } else {
      const r = await capture(["zfs", "create", ...(sizeGiB > 0 ? ["-o", `refquota=${sizeGiB * 1024 * 1024}k`] : []), ds]);
      if (r.code !== 0) throw storageError(`zfs create ${ds}: ${r.err.trim() || `exit ${r.code}`}`);
    }
    const mp = await capture(["zfs", "get", "-H", "-o", "value", "mountpoint", ds]);
    return { volid: `${this.s.id}:${name}`, path: mp.out.trim() || `/${ds}`, via };
  }

  async destroy(vol: Volume): Promise<void> {
    await zfsDestroy(`${this.s.pool}/${vol.volid.split(":")[1]}`, { recursive: true });
  }
}

class DirDriver implements VolumeDriver {
  constructor(
    private readonly s: StorageInfo,
    readonly type: "dir" | "btrfs",
  ) {}
  get guarantees() {
    return this.type === "btrfs" ? "subvolume: instant snapshots; no size limit unless qgroups are enabled" : "a plain directory: no size limit, snapshots are copies";
  }

  async create(vmid: string, disk: number, _sizeGiB: number): Promise<Volume> {
    const name = `subvol-${vmid}-disk-${disk}`;
    const path = `${this.s.path}/images/${vmid}/${name}`;
    if (existsSync(path)) throw storageError(`${this.type}: volume ${path} already exists`);
    mkdirSync(dirname(path), { recursive: true });
    if (this.type === "btrfs") {
      const r = await capture(["btrfs", "subvolume", "create", path]);
      if (r.code !== 0) throw storageError(`btrfs subvolume create ${path}: ${r.err.trim()}`);
    } else {
      mkdirSync(path);
    }
    return { volid: `${this.s.id}:${vmid}/${name}`, path, via: this.type };
  }

  async destroy(vol: Volume): Promise<void> {
    if (!existsSync(vol.path)) return;
    if (this.type === "btrfs") await capture(["btrfs", "subvolume", "delete", vol.path]);
    rmSync(vol.path, { recursive: true, force: true });
    try {
      rmdirSync(dirname(vol.path)); // images/<vmid> goes with its last volume, as Proxmox does
    } catch {}
  }
}

export function volumeDriver(s: StorageInfo): VolumeDriver {
  switch (s.type) {
    case "zfspool":
      if (!s.pool) throw storageError(`storage ${s.id}: zfspool without a pool`);
      return new ZfsDriver(s);
    case "btrfs":
    case "dir":
      if (!s.path) throw storageError(`storage ${s.id}: ${s.type} storage without a path`);
      return new DirDriver(s, s.type);
    default:
      throw storageError(`storage ${s.id}: type ${s.type} cannot hold container directories (use zfspool, btrfs or dir)`);
  }
}
