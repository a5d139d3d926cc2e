// Snapshot drivers, one interface, picked per container from where its rootfs lives:
//   zfs      the rootfs is a dataset's mountpoint: `ds@name` (libzfs_core's lzc_snapshot where it
//            initialises, else the zfs CLI); atomic and instant; restore is a rollback, to the latest only
//   btrfs    the rootfs is a btrfs subvolume: a read-only snapshot subvolume; instant; restore swaps in a
//            writable snapshot of it
//   overlay  the rootfs is an overlay mount: its upper dir is copied (reflink where possible) as the layer;
//            restore puts it back as the upper dir and remounts; lower layers are shared and must not change
//   dir      anything else: a copy of the tree (cp --reflink=auto: a reflink clone on btrfs/xfs, else bytes)
// Snapshot data and metadata live next to the rootfs (`<parent>/.nexcage-snapshots/<rootfs name>/`), on the
// same filesystem (which btrfs snapshots and reflinks need) and outliving /run.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname } from "node:path";
import { NexcageError } from "../core/errors.ts";
import { capture, must, tempView, zfsDestroy, zfsDestroyQuietly, zfsSnapshotView } from "../storage/tools.ts";

export type DriverKind = "zfs" | "btrfs" | "overlay" | "dir" | "pct";

/** what only the zfs driver does: send and receive streams */
export interface ZfsStreams {
  send(ref: string, parent: string | undefined, out: string): Promise<void>;
  receive(stream: string, snapName: string, importName: string, parentRef?: string): Promise<{ ref: string; undo: () => Promise<void> }>;
}
export const isZfs = (d: SnapshotDriver): d is SnapshotDriver & ZfsStreams => d.kind === "zfs" && "send" in d;

export interface SnapshotDriver {
  readonly kind: DriverKind;
  /** what a snapshot by this driver guarantees, for `snapshot list` and the README */
  readonly guarantees: string;
  /** take the snapshot; returns the driver's reference to it */
  create(name: string): Promise<string>;
  /**
   * Restore in two steps, so a failure leaves the container as it was: prepare (the slow part, while the
   * container may still run; changes nothing it uses), then commit once it is stopped (a swap). abort()
   * drops what prepare made.
   */
  prepareRestore(ref: string): Promise<{ commit: () => Promise<void>; abort: () => Promise<void> }>;
  delete(ref: string): Promise<void>;
  /** what depends on the snapshot (it must not be deleted while this is non-empty) */
  dependents(ref: string): Promise<string[]>;
  /** a directory with the snapshot's files, for hashing; close() when done */
  view(ref: string): Promise<{ path: string; close: () => Promise<void> }>;
  /** make a complete tree (on the same filesystem as the snapshot home) a snapshot named name */
  adopt(name: string, tree: string): Promise<string>;
}

const cannotAdopt = (kind: string) => new NexcageError("unsupported", `importing a snapshot into a ${kind} rootfs is not supported by this build (dir and btrfs rootfs can)`);

const failure = (msg: string) => new NexcageError("storage", msg);

/** where a rootfs's snapshots live */
export const snapshotHome = (rootfs: string) => `${dirname(rootfs)}/.nexcage-snapshots/${basename(rootfs)}`;

interface Mount {
  mountPoint: string;
  fstype: string;
  source: string;
  options: string;
}

/** the mount a path lives on (longest mount point that prefixes it) */
export function mountOf(path: string): Mount | undefined {
  let best: Mount | undefined;
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const [pre, post] = line.split(" - ");
    if (!pre || !post) continue;
    const mp = (pre.split(" ")[4] ?? "").replace(/\\040/g, " ");
    const [fstype, source, options] = post.split(" ") as [string, string, string];
    if ((path === mp || path.startsWith(mp === "/" ? "/" : `${mp}/`)) && (!best || mp.length >= best.mountPoint.length)) best = { mountPoint: mp, fstype, source, options };
  }
  return best;
}

/** swap dir `fresh` in at `target`, keeping the old tree until the swap succeeded; returns the old path */
function swapIn(target: string, fresh: string): string {
  const old = `${target}.nexcage-old-${process.pid}`;
  renameSync(target, old);
  try {
    renameSync(fresh, target);
  } catch (e) {
    renameSync(old, target);
    throw e;
  }
  return old;
}

class BtrfsDriver implements SnapshotDriver {
  readonly kind = "btrfs";
  readonly guarantees = "atomic, instant copy-on-write snapshot of the subvolume; read-only";
  constructor(private readonly rootfs: string) {}
  async create(name: string): Promise<string> {
    const home = snapshotHome(this.rootfs);
    mkdirSync(home, { recursive: true });
    const dest = `${home}/${name}`;
    await must(["btrfs", "subvolume", "snapshot", "-r", this.rootfs, dest], "btrfs snapshot");
    return dest;
  }
  async prepareRestore(ref: string) {
    if (!existsSync(ref)) throw failure(`btrfs restore: snapshot ${ref} is gone`);
    const fresh = `${this.rootfs}.nexcage-restore-${process.pid}`;
    await must(["btrfs", "subvolume", "snapshot", ref, fresh], "btrfs restore");
    const abort = async () => void (await capture(["btrfs", "subvolume", "delete", fresh]));
    return {
      abort,
      commit: async () => {
        let old: string;
        try {
          old = swapIn(this.rootfs, fresh);
        } catch (e) {
          await abort();
          throw failure(`btrfs restore: ${(e as Error).message}`);
        }
        await capture(["btrfs", "subvolume", "delete", old]);
      },
    };
  }
  async delete(ref: string): Promise<void> {
    if (existsSync(ref)) await must(["btrfs", "subvolume", "delete", ref], "btrfs delete");
  }
  async dependents(): Promise<string[]> {
    return [];
  }
  async view(ref: string) {
    return { path: ref, close: async () => {} };
  }
  async adopt(name: string, tree: string): Promise<string> {
    const dest = `${snapshotHome(this.rootfs)}/${name}`;
    await must(["btrfs", "subvolume", "create", dest], "btrfs import");
    try {
      await must(["cp", "-a", "--reflink=auto", `${tree}/.`, dest], "btrfs import");
      await must(["btrfs", "property", "set", "-ts", dest, "ro", "true"], "btrfs import");
    } catch (e) {
      await capture(["btrfs", "subvolume", "delete", dest]);
      throw e;
    }
    return dest;
  }
}

class ZfsDriver implements SnapshotDriver {
  readonly kind = "zfs";
  readonly guarantees = "atomic, instant snapshot of the dataset; restore rolls back to the latest snapshot, or mounts a clone of an older or imported one in the dataset's place";
  constructor(
    private readonly dataset: string,
    private readonly rootfs: string,
  ) {}
  async create(name: string): Promise<string> {
    const ref = `${this.dataset}@${name}`;
    const { zfsCoreProblem, lzcSnapshot } = await import("../native/zfs.ts");
    if (!zfsCoreProblem()) {
      const rc = lzcSnapshot(ref);
      if (rc !== 0) throw failure(`zfs: lzc_snapshot ${ref} failed with errno ${rc}`);
    } else {
      await must(["zfs", "snapshot", ref], "zfs snapshot");
    }
    return ref;
  }
  async prepareRestore(ref: string) {
    const refDs = ref.split("@")[0] as string;
    const snaps = (await must(["zfs", "list", "-H", "-t", "snapshot", "-o", "name", "-s", "createtxg", "-d", "1", refDs], "zfs list")).trim().split("\n");
    if (!snaps.includes(ref)) throw failure(`zfs restore: snapshot ${ref} is gone`);
    // the latest snapshot of the live dataset: a rollback, atomic
    if (refDs !== this.dataset || snaps.at(-1) !== ref) return this.cloneSwap(ref);
    return {
      abort: async () => {},
      commit: async () => {
        const { zfsCoreProblem, lzcRollbackTo } = await import("../native/zfs.ts");
        if (!zfsCoreProblem()) {
          const rc = lzcRollbackTo(this.dataset, ref);
          if (rc !== 0) throw failure(`zfs: lzc_rollback_to ${ref} failed with errno ${rc}`);
          return;
        }
        const r = await capture(["zfs", "rollback", ref]);
        if (r.code !== 0) throw failure(`zfs rollback: ${r.err.trim()}`);
      },
    };
  }
  /**
   * Any other snapshot (older, or imported onto another dataset): a clone of it, made while the container
   * runs, takes the dataset's mountpoint once it is stopped. The old dataset keeps its snapshots; the clone
   * depends on its origin, which therefore cannot be deleted while the container runs on it.
   */
  private async cloneSwap(ref: string) {
    const clone = `${this.dataset.replace(/-r[0-9a-z]+$/, "")}-r${Date.now().toString(36)}`;
    const { zfsCoreProblem, lzcClone } = await import("../native/zfs.ts");
    if (!zfsCoreProblem()) {
      const rc = lzcClone(clone, ref);
      if (rc !== 0) throw failure(`zfs: lzc_clone ${ref} failed with errno ${rc}`);
      await must(["zfs", "set", "mountpoint=none", clone], "zfs restore (clone)");
    } else {
      await must(["zfs", "clone", "-o", "mountpoint=none", ref, clone], "zfs restore (clone)");
    }
    const abort = () => zfsDestroyQuietly(clone);
    return {
      abort,
      commit: async () => {
        await must(["zfs", "set", "mountpoint=none", this.dataset], "zfs restore (unmount)");
        const m = await capture(["zfs", "set", `mountpoint=${this.rootfs}`, clone]);
        if (m.code !== 0) {
          await capture(["zfs", "set", `mountpoint=${this.rootfs}`, this.dataset]);
          await abort();
          throw failure(`zfs restore (mount): ${m.err.trim()}`);
        }
      },
    };
  }

  /** `zfs send` of a snapshot (incremental from parent, which must be on the same dataset) into a file */
  async send(ref: string, parent: string | undefined, out: string): Promise<void> {
    if (parent && parent.split("@")[0] !== ref.split("@")[0]) throw new NexcageError("badState", `an incremental zfs stream needs ${parent} and ${ref} on one dataset`);
    const { zfsCoreProblem, lzcSend } = await import("../native/zfs.ts");
    if (!zfsCoreProblem()) {
      const { openSync, closeSync } = await import("node:fs");
      const fd = openSync(out, "w", 0o600);
      try {
        const rc = lzcSend(ref, parent, fd);
        if (rc !== 0) throw failure(`zfs: lzc_send ${ref} failed with errno ${rc}`);
      } finally {
        closeSync(fd);
      }
      return;
    }
    await must(["sh", "-c", `zfs send ${parent ? `-i '${parent}' ` : ""}'${ref}' > '${out}'`], "zfs send");
  }

  /**
   * `zfs receive` of a stream as a snapshot of this container: a full stream into a new dataset next to the
   * container's (a received dataset cannot share the live one), an incremental one onto the dataset that holds
   * its parent. Returns the received snapshot's ref; undo() removes it again.
   */
  async receive(stream: string, snapName: string, importName: string, parentRef?: string): Promise<{ ref: string; undo: () => Promise<void> }> {
    const target = parentRef ? (parentRef.split("@")[0] as string) : `${this.dataset.replace(/-r[0-9a-z]+$/, "")}-import-${importName}`;
    if (parentRef && target === this.dataset) throw new NexcageError("badState", `the parent ${parentRef} is a snapshot of the live rootfs, which a zfs stream cannot be received onto: import the full stream`);
    const { zfsCoreProblem, lzcReceive } = await import("../native/zfs.ts");
    if (!zfsCoreProblem()) {
      const { openSync, closeSync } = await import("node:fs");
      const fd = openSync(stream, "r");
      try {
        const rc = lzcReceive(`${target}@${snapName}`, fd);
        if (rc !== 0) throw failure(`zfs: lzc_receive ${target}@${snapName} failed with errno ${rc}`);
      } finally {
        closeSync(fd);
      }
    } else {
      const r = await capture(["sh", "-c", `zfs receive '${target}' < '${stream}'`]);
      if (r.code !== 0) throw failure(`zfs receive: ${r.err.trim()}`);
    }
    if (!parentRef) await capture(["zfs", "set", "mountpoint=none", target]);
    const ref = `${target}@${snapName}`;
    return { ref, undo: async () => void (await capture(["zfs", "destroy", "-r", parentRef ? ref : target])) };
  }

  async delete(ref: string): Promise<void> {
    await this.deleteSnap(ref);
    // a dataset left behind by a restore or an import goes with its last snapshot
    const ds = ref.split("@")[0] as string;
    if (ds !== this.dataset) {
      const left = await capture(["zfs", "list", "-H", "-t", "snapshot", "-o", "name", "-d", "1", ds]);
      const mp = await capture(["zfs", "get", "-H", "-o", "value", "mountpoint", ds]);
      if (left.code === 0 && !left.out.trim() && mp.out.trim() === "none") await capture(["zfs", "destroy", ds]);
    }
  }

  private async deleteSnap(ref: string): Promise<void> {
    const { zfsCoreProblem, lzcDestroySnap } = await import("../native/zfs.ts");
    if (!zfsCoreProblem()) {
      const rc = lzcDestroySnap(ref);
      if (rc === 17) throw new NexcageError("badState", `zfs: ${ref} has clones`);
      if (rc !== 0 && rc !== 2) throw failure(`zfs: lzc_destroy_snaps ${ref} failed with errno ${rc}`);
      return;
    }
    await zfsDestroy(ref);
  }
  /** clones made from it (by origin: zfs-fuse has no `clones` property) */
  async dependents(ref: string): Promise<string[]> {
    const r = await capture(["zfs", "list", "-H", "-o", "name,origin", "-t", "filesystem,volume"]);
    if (r.code !== 0) throw failure(`zfs list: ${r.err.trim()}`);
    return r.out.split("\n").filter((l) => l.split("\t")[1] === ref).map((l) => `zfs clone ${l.split("\t")[0]}`);
  }
  /** snapshots are not mounted (and zfs-fuse has no .zfs dir): a temporary clone is */
  async view(ref: string) {
    return zfsSnapshotView(ref, `${this.dataset}-nexcage-view-${process.pid}-${Date.now()}`);
  }
  async adopt(): Promise<string> {
    throw cannotAdopt("zfs");
  }
}

class OverlayDriver implements SnapshotDriver {
  readonly kind = "overlay";
  readonly guarantees = "the upper layer copied (reflink where the filesystem can) while frozen; lower layers shared, must stay unchanged";
  constructor(
    private readonly rootfs: string,
    private readonly options: string,
  ) {}
  private opt(k: string): string {
    const v = this.options.split(",").find((o) => o.startsWith(`${k}=`))?.slice(k.length + 1);
    if (!v) throw failure(`overlay at ${this.rootfs} has no ${k}`);
    return v;
  }
  async create(name: string): Promise<string> {
    const dest = `${snapshotHome(this.rootfs)}/${name}`;
    mkdirSync(dest, { recursive: true });
    await must(["cp", "-a", "--reflink=auto", `${this.opt("upperdir")}/.`, `${dest}/upper`], "overlay snapshot");
    return dest;
  }
  async prepareRestore(ref: string) {
    const upper = this.opt("upperdir");
    const opts = `lowerdir=${this.opt("lowerdir")},upperdir=${upper},workdir=${this.opt("workdir")}`;
    const fresh = `${upper}.nexcage-restore-${process.pid}`;
    try {
      await must(["cp", "-a", "--reflink=auto", `${ref}/upper`, fresh], "overlay restore");
    } catch (e) {
      rmSync(fresh, { recursive: true, force: true });
      throw e;
    }
    const abort = async () => rmSync(fresh, { recursive: true, force: true });
    return {
      abort,
      // the overlay must not see its upper dir change under it: unmount, swap, mount again
      commit: async () => {
        await must(["umount", this.rootfs], "overlay restore (unmount)");
        let old: string;
        try {
          old = swapIn(upper, fresh);
        } catch (e) {
          await abort();
          await capture(["mount", "-t", "overlay", "overlay", "-o", opts, this.rootfs]);
          throw failure(`overlay restore: ${(e as Error).message}`);
        }
        const m = await capture(["mount", "-t", "overlay", "overlay", "-o", opts, this.rootfs]);
        if (m.code !== 0) {
          swapIn(upper, old);
          await capture(["mount", "-t", "overlay", "overlay", "-o", opts, this.rootfs]);
          throw failure(`overlay restore (mount): ${m.err.trim()}`);
        }
        rmSync(old, { recursive: true, force: true });
      },
    };
  }
  async delete(ref: string): Promise<void> {
    rmSync(ref, { recursive: true, force: true });
  }
  async dependents(): Promise<string[]> {
    return [];
  }
  /** the snapshot's view: its layer over the (unchanged) lower layers, mounted read-only */
  async view(ref: string) {
    return tempView(
      "overlay",
      (mp) => must(["mount", "-t", "overlay", "overlay", "-o", `ro,lowerdir=${ref}/upper:${this.opt("lowerdir")}`, mp], "overlay view"),
      async (mp) => void (await capture(["umount", mp])),
    );
  }
  async adopt(): Promise<string> {
    throw cannotAdopt("overlay");
  }
}

class DirDriver implements SnapshotDriver {
  readonly kind = "dir";
  readonly guarantees = "a full copy taken while frozen (reflink clones where the filesystem can, else bytes); time and space grow with the tree";
  constructor(private readonly rootfs: string) {}
  async create(name: string): Promise<string> {
    const dest = `${snapshotHome(this.rootfs)}/${name}`;
    mkdirSync(dirname(dest), { recursive: true });
    const tmp = `${dest}.tmp-${process.pid}`;
    try {
      await must(["cp", "-a", "--reflink=auto", this.rootfs, tmp], "dir snapshot");
      renameSync(tmp, dest);
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw e instanceof NexcageError ? e : failure(`dir snapshot: ${(e as Error).message}`);
    }
    return dest;
  }
  async prepareRestore(ref: string) {
    if (!existsSync(ref)) throw failure(`dir restore: snapshot ${ref} is gone`);
    const fresh = `${this.rootfs}.nexcage-restore-${process.pid}`;
    const abort = async () => rmSync(fresh, { recursive: true, force: true });
    try {
      await must(["cp", "-a", "--reflink=auto", ref, fresh], "dir restore");
    } catch (e) {
      await abort();
      throw e;
    }
    return {
      abort,
      commit: async () => {
        let old: string;
        try {
          old = swapIn(this.rootfs, fresh);
        } catch (e) {
          await abort();
          throw failure(`dir restore: ${(e as Error).message}`);
        }
        rmSync(old, { recursive: true, force: true });
      },
    };
  }
  async delete(ref: string): Promise<void> {
    rmSync(ref, { recursive: true, force: true });
  }
  async dependents(): Promise<string[]> {
    return [];
  }
  async view(ref: string) {
    return { path: ref, close: async () => {} };
  }
  async adopt(name: string, tree: string): Promise<string> {
    const dest = `${snapshotHome(this.rootfs)}/${name}`;
    renameSync(tree, dest);
    return dest;
  }
}

/** the dataset mounted exactly at path, if any (zfs-fuse mounts are not in our mountinfo: ask zfs) */
async function zfsDatasetAt(path: string): Promise<string | undefined> {
  if (!Bun.which("zfs")) return undefined;
  const r = await capture(["zfs", "list", "-H", "-o", "name,mountpoint", "-t", "filesystem"]);
  if (r.code !== 0) return undefined;
  for (const line of r.out.split("\n")) {
    const [name, mp] = line.split("\t");
    if (name && mp === path) return name;
  }
  return undefined;
}

/** the driver for a rootfs, from where it lives; `kind` names one explicitly (a snapshot's own driver) */
export async function driverFor(rootfs: string, kind?: DriverKind): Promise<SnapshotDriver> {
  const m = mountOf(rootfs);
  if ((!kind || kind === "overlay") && m?.fstype === "overlay" && m.mountPoint === rootfs) return new OverlayDriver(rootfs, m.options);
  if ((!kind || kind === "btrfs") && m?.fstype === "btrfs" && statSync(rootfs).ino === 256) return new BtrfsDriver(rootfs);
  if (!kind || kind === "zfs") {
    const ds = await zfsDatasetAt(rootfs);
    if (ds) return new ZfsDriver(ds, rootfs);
  }
  if (!kind || kind === "dir") return new DirDriver(rootfs);
  throw failure(`the snapshot was taken by the ${kind} driver, but ${rootfs} is no longer on ${kind}`);
}
