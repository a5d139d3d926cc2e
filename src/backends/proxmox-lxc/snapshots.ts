// Snapshots of a Proxmox CT go through pct, so Proxmox records them as it records its own ([name] sections
// in the CT's config, `pct listsnapshot`) and takes them with the storage's own snapshot (zfs, btrfs; a dir
// storage cannot). nexcage reads a snapshot's files for its manifest where the storage keeps them: a ZFS
// snapshot through a temporary clone, a btrfs one at `<volume>@<name>` (pve-storage's BTRFS layout).
import { NexcageError } from "../../core/errors.ts";
import type { PveCli } from "../../proxmox/cli.ts";
import type { SnapshotDriver } from "../../snapshot/drivers.ts";
import { zfsSnapshotView } from "../../storage/tools.ts";
import type { StorageInfo, Volume } from "../../storage/volumes.ts";

export function pctSnapshotDriver(pve: PveCli, vmid: string, storage: StorageInfo, volume: Volume): SnapshotDriver {
  return {
    kind: "pct",
    guarantees: "pct snapshot: the storage's own atomic snapshot, recorded in the CT's Proxmox config; restore is pct rollback",
    async create(name) {
      await pve.ok("pct", ["snapshot", vmid, name, "--description", "nexcage snapshot"]);
      return name;
    },
    async prepareRestore(ref) {
      const list = await pve.ok("pct", ["listsnapshot", vmid]);
      if (!new RegExp(`-> ${ref}\\s`).test(list)) throw new NexcageError("notFound", `proxmox: CT ${vmid} has no snapshot ${ref}`);
      return { abort: async () => {}, commit: async () => void (await pve.ok("pct", ["rollback", vmid, ref])) };
    },
    async delete(ref) {
      await pve.ok("pct", ["delsnapshot", vmid, ref]);
    },
    async dependents() {
      return [];
    },
    async view(ref) {
      if (storage.type === "btrfs") return { path: `${volume.path}@${ref}`, close: async () => {} };
      if (storage.type !== "zfspool") throw new NexcageError("unsupported", `proxmox: cannot read snapshots on a ${storage.type} storage`);
      const ds = `${storage.pool}/${volume.volid.split(":")[1]}`;
      return zfsSnapshotView(`${ds}@${ref}`, `${ds}-nexcage-view-${process.pid}`);
    },
    async adopt() {
      throw new NexcageError("unsupported", "importing snapshots into a Proxmox CT is not supported by this build");
    },
  };
}
