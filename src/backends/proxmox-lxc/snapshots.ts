// Snapshots of a Proxmox CT go through pct, so Proxmox records them as it records its own ([name] sections
// in the CT's config, `pct listsnapshot`) and takes them with the storage's own snapshot (zfs, btrfs; a dir
// storage cannot). nexcage reads a snapshot's files for its manifest where the storage keeps them: a ZFS
// snapshot through a temporary clone, a btrfs one at `<volume>@<name>` (pve-storage's BTRFS layout).
import { mkdtempSync, rmSync } from "node:fs";
import { NexcageError } from "../../core/errors.ts";
import type { PveCli } from "../../proxmox/cli.ts";
import type { SnapshotDriver } from "../../snapshot/drivers.ts";
import type { StorageInfo, Volume } from "../../storage/volumes.ts";

async function sh(argv: string[]): Promise<{ code: number; err: string }> {
  const p = Bun.spawn(argv, { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  const [err, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
  return { code, err };
}

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
      const clone = `${ds}-nexcage-view-${process.pid}`;
      const mp = mkdtempSync("/tmp/nexcage-pct-view-");
      const r = await sh(["zfs", "clone", "-o", `mountpoint=${mp}`, "-o", "readonly=on", `${ds}@${ref}`, clone]);
      if (r.code !== 0) throw new NexcageError("storage", `zfs clone for reading ${ds}@${ref}: ${r.err.trim()}`);
      return {
        path: mp,
        close: async () => {
          for (let i = 0; i < 30 && (await sh(["zfs", "destroy", clone])).code !== 0; i++) await Bun.sleep(100);
          rmSync(mp, { recursive: true, force: true });
        },
      };
    },
    async adopt() {
      throw new NexcageError("unsupported", "importing snapshots into a Proxmox CT is not supported by this build");
    },
  };
}
