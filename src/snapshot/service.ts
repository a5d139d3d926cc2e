// `nexcage snapshot ...`: filesystem snapshots of a container's rootfs with a SHA-256 manifest each.
// Works through the Runtime's public verbs (state, pause/resume, kill/delete/create/start) and a
// per-container snapshot lock, so it never reaches into a backend. A running container is frozen for the
// instant of the snapshot and thawed after, even on error; the manifest is then built from the
// (immutable) snapshot, reusing the parent's hashes for unchanged files.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { NexcageError } from "../core/errors.ts";
import { validateId } from "../core/ids.ts";
import { log } from "../core/log.ts";
import type { Runtime } from "../runtime.ts";
import { driverFor, isZfs, snapshotHome, type DriverKind, type SnapshotDriver } from "./drivers.ts";
import { buildManifest, scan, verifyTree, type Difference, type Manifest } from "./manifest.ts";

export const SNAPSHOT_NAME = /^[a-zA-Z][a-zA-Z0-9_-]{0,39}$/;

export interface SnapshotMeta {
  name: string;
  container: string;
  driver: DriverKind;
  /** the driver's reference: a path, or dataset@name */
  ref: string;
  /** RFC3339: when the snapshot was taken (the instant its data is from) */
  taken: string;
  /** RFC3339: when its manifest was complete */
  created: string;
  /** the snapshot before it (its manifest seeded this one's hashes) */
  parent?: string;
  /** how long the container was frozen for it, ms (0: it was not running) */
  frozenMs: number;
  files: number;
  bytes: number;
  manifest: Manifest;
}

export function validateSnapshotName(name: string): string {
  if (!SNAPSHOT_NAME.test(name)) throw new NexcageError("usage", `invalid snapshot name ${JSON.stringify(name)}: a letter, then up to 39 letters, digits, - or _`);
  if (name === "current" || name === "vzdump") throw new NexcageError("usage", `snapshot name ${JSON.stringify(name)} is reserved`);
  return name;
}

function defaultName(): string {
  const d = new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").replace(/\..*$/, "");
  return `snap-${d}`;
}

interface Target {
  status: string;
  bundle: string;
  rootfs: string;
  home: string;
  driver: (kind?: DriverKind) => Promise<SnapshotDriver>;
  /** the backend relaunches the same container after a restore instead of delete + create */
  inPlace?: true;
}

export interface RestoreResult {
  restarted: boolean;
  differences?: Difference[];
}

export class Snapshots {
  constructor(private readonly rt: Runtime) {}

  /** where a container's snapshots are taken, kept and how: its backend may say (proxmox-lxc: pct) */
  private async container(id: string): Promise<Target> {
    const st = await this.rt.state(validateId(id));
    const hooks = await this.rt.snapshotHooks(id);
    const rootfs = hooks?.rootfs ?? st.rootfs;
    if (!existsSync(rootfs)) throw new NexcageError("notFound", `rootfs of ${id} is gone: ${rootfs}`);
    return {
      status: st.status,
      bundle: st.bundle,
      rootfs,
      home: hooks?.home ?? snapshotHome(rootfs),
      driver: async (kind) => (hooks ? hooks.driver : driverFor(rootfs, kind)),
      ...(hooks ? { inPlace: true } : {}),
    };
  }

  /** snapshot operations on one container are serialized by their own lock (the container lock stays free
   *  for the verbs they call) */
  private lock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.rt.store.withLock(`${validateId(id)}.snapshots`, fn);
  }

  list(id: string, home: string): SnapshotMeta[] {
    if (!existsSync(home)) return [];
    const metas: SnapshotMeta[] = [];
    for (const f of readdirSync(home)) {
      if (!f.endsWith(".json")) continue;
      try {
        const m = JSON.parse(readFileSync(`${home}/${f}`, "utf8")) as SnapshotMeta;
        if (m.container === id) metas.push(m);
      } catch (e) {
        log().warn(`snapshot metadata ${home}/${f}: ${(e as Error).message}`);
      }
    }
    return metas.sort((a, b) => a.created.localeCompare(b.created));
  }

  async listFor(id: string): Promise<SnapshotMeta[]> {
    return this.list(id, (await this.container(id)).home);
  }

  private get(id: string, home: string, name: string): SnapshotMeta {
    const m = this.list(id, home).find((s) => s.name === validateSnapshotName(name));
    if (!m) throw new NexcageError("notFound", `snapshot ${name} of ${id} does not exist`);
    return m;
  }

  private save(home: string, meta: SnapshotMeta): void {
    mkdirSync(home, { recursive: true });
    const path = `${home}/${meta.name}.json`;
    writeFileSync(`${path}.tmp`, JSON.stringify(meta));
    renameSync(`${path}.tmp`, path);
  }

  async create(id: string, name = defaultName(), opts: { maxPerContainer?: number } = {}): Promise<SnapshotMeta> {
    validateSnapshotName(name);
    return this.lock(id, async () => {
      const t = await this.container(id);
      const existing = this.list(id, t.home);
      if (existing.some((s) => s.name === name)) throw new NexcageError("exists", `snapshot ${name} of ${id} already exists`);
      if (opts.maxPerContainer && existing.length >= opts.maxPerContainer) {
        throw new NexcageError("badState", `${id} has ${existing.length} snapshots, the limit (snapshots.maxPerContainer): prune or delete some first`);
      }
      const driver = await t.driver();
      // frozen for the instant of the snapshot, thawed after even when it fails
      const freeze = t.status === "running";
      const taken = new Date().toISOString();
      const t0 = performance.now();
      if (freeze) await this.rt.pause(id);
      let ref: string;
      let frozenMs = 0;
      try {
        ref = await driver.create(name);
      } finally {
        if (freeze) {
          await this.rt.resume(id).catch((e) => log().error(`snapshot ${id}: thaw failed: ${(e as Error).message}`));
          frozenMs = performance.now() - t0;
        }
      }
      // all or nothing: without its manifest the snapshot goes again
      try {
        const parent = existing.at(-1);
        const view = await driver.view(ref);
        let manifest: Manifest;
        try {
          const reuse = parent ? { reuse: new Map(parent.manifest.entries.map((e) => [e.path, e])), reuseBefore: BigInt(Date.parse(parent.taken ?? parent.created) - 2000) * 1_000_000n } : {};
          manifest = await buildManifest(view.path, reuse);
        } finally {
          await view.close();
        }
        const meta: SnapshotMeta = {
          name,
          container: id,
          driver: driver.kind,
          ref,
          taken,
          created: new Date().toISOString(),
          ...(parent ? { parent: parent.name } : {}),
          frozenMs: Math.round(frozenMs * 1000) / 1000,
          files: manifest.files,
          bytes: manifest.bytes,
          manifest,
        };
        this.save(t.home, meta);
        return meta;
      } catch (e) {
        await driver.delete(ref).catch(() => {});
        throw e;
      }
    });
  }

  /** re-hash the snapshot and name every file that differs from its manifest */
  async verify(id: string, name: string): Promise<Difference[]> {
    return this.lock(id, async () => {
      const t = await this.container(id);
      const meta = this.get(id, t.home, name);
      const driver = await t.driver(meta.driver);
      const view = await driver.view(meta.ref);
      try {
        return await verifyTree(view.path, meta.manifest);
      } finally {
        await view.close();
      }
    });
  }

  /**
   * Make the rootfs what the snapshot holds. A container that is not stopped is refused unless force:
   * then it is killed, restored and created+started again from its bundle.
   */
  async restore(id: string, name: string, opts: { force?: boolean; verify?: boolean } = {}): Promise<RestoreResult> {
    return this.lock(id, async () => {
      const t = await this.container(id);
      const meta = this.get(id, t.home, name);
      const live = t.status !== "stopped";
      if (live && !opts.force) throw new NexcageError("badState", `container ${id} is ${t.status}: restore needs it stopped (or --force to stop, restore and restart it)`);
      const driver = await t.driver(meta.driver);
      // the slow part first, while the container still runs: a failure here changes nothing
      const prepared = await driver.prepareRestore(meta.ref);
      if (live) {
        try {
          await this.rt.kill(id, 9);
          for (let i = 0; i < 500 && (await this.rt.state(id)).status !== "stopped"; i++) await Bun.sleep(10);
        } catch (e) {
          await prepared.abort();
          throw e;
        }
      }
      try {
        await prepared.commit();
      } catch (e) {
        // the rootfs is as it was: bring the container back as it was too
        if (live) await this.restart(id, t).catch((r) => log().error(`restore ${id}: restart failed: ${(r as Error).message}`));
        throw e;
      }
      const result: RestoreResult = { restarted: false };
      if (opts.verify) result.differences = await verifyTree(t.rootfs, meta.manifest);
      if (live) {
        await this.restart(id, t);
        result.restarted = true;
      }
      return result;
    });
  }

  /** created again from its bundle (or, where the backend keeps the container, launched again in place),
   *  detached from our stdio: nobody's pipe should wait on it */
  private async restart(id: string, t: Target): Promise<void> {
    const { withNullStdio } = await import("../native/libc.ts");
    if (t.inPlace) {
      await withNullStdio(() => this.rt.relaunch(id));
    } else {
      await this.rt.delete(id, true);
      await withNullStdio(() => this.rt.create({ id, bundle: t.bundle }));
    }
    await this.rt.start(id);
  }

  async delete(id: string, name: string): Promise<void> {
    return this.lock(id, async () => {
      const t = await this.container(id);
      const meta = this.get(id, t.home, name);
      const driver = await t.driver(meta.driver);
      const deps = await driver.dependents(meta.ref);
      if (deps.length) throw new NexcageError("badState", `snapshot ${name} of ${id} is in use by ${deps.join(", ")}: remove that first`);
      await driver.delete(meta.ref);
      rmSync(`${t.home}/${meta.name}.json`, { force: true });
    });
  }

  /** a zfs send stream: received next to the container's dataset (onto its parent's dataset when incremental),
   *  read back through a clone and checked against the manifest; removed again when anything differs */
  private async importZfs(id: string, t: Target, name: string, meta: SnapshotMeta & { exportParent?: string }, stream: string): Promise<SnapshotMeta> {
    const driver = await t.driver();
    if (!isZfs(driver)) throw new NexcageError("unsupported", `import: this export is a zfs send stream, and the rootfs of ${id} is not a ZFS dataset`);
    let parentRef: string | undefined;
    if (meta.exportParent) {
      const parent = this.list(id, t.home).find((s) => s.name === meta.exportParent);
      if (!parent) throw new NexcageError("notFound", `import: the export is incremental on snapshot ${meta.exportParent}, which ${id} does not have: import that first`);
      parentRef = parent.ref;
    }
    const got = await driver.receive(stream, meta.ref.split("@")[1] as string, name, parentRef);
    try {
      const view = await driver.view(got.ref);
      let diffs: Difference[];
      try {
        diffs = await verifyTree(view.path, meta.manifest);
      } finally {
        await view.close();
      }
      if (diffs.length) throw new NexcageError("integrity", `import: the stream does not match its manifest (${diffs.length} differences, first: ${diffs[0]?.path}: ${diffs[0]?.what}); nothing imported`);
    } catch (e) {
      await got.undo();
      throw e;
    }
    const { exportParent: _p, zfsStream: _z, ...rest } = meta as SnapshotMeta & { exportParent?: string; zfsStream?: boolean };
    const kept: SnapshotMeta = { ...rest, name, container: id, driver: "zfs", ref: got.ref, created: new Date().toISOString() };
    const last = this.list(id, t.home).at(-1);
    if (last) kept.parent = last.name;
    else delete kept.parent;
    this.save(t.home, kept);
    return kept;
  }

  /** apply a retention policy; a snapshot something depends on stays, with the reason */
  async prune(id: string, p: { keepLast?: number | undefined; maxAge?: string | undefined; dryRun?: boolean }): Promise<{ deleted: string[]; kept: { name: string; why: string }[] }> {
    const t = await this.container(id);
    const policy: Retention = { ...(p.keepLast !== undefined ? { keepLast: p.keepLast } : {}), ...(p.maxAge ? { maxAge: parseAge(p.maxAge) } : {}) };
    if (policy.keepLast === undefined && policy.maxAge === undefined) throw new NexcageError("usage", "prune needs --keep-last N and/or --max-age AGE (or snapshots.keepLast/maxAge in the config)");
    const deleted: string[] = [];
    const kept: { name: string; why: string }[] = [];
    for (const s of toPrune(this.list(id, t.home), policy)) {
      const driver = await t.driver(s.driver);
      const deps = await driver.dependents(s.ref);
      if (deps.length) {
        kept.push({ name: s.name, why: `in use by ${deps.join(", ")}` });
        continue;
      }
      if (!p.dryRun) await this.delete(id, s.name);
      deleted.push(s.name);
    }
    return { deleted, kept };
  }

  /**
   * A tar stream: nexcage-snapshot.json (the metadata and manifest) then rootfs/ with the snapshot's tree;
   * with a parent, only what changed since it (the manifest still covers every file, so import can check).
   */
  async export(id: string, name: string, opts: { output?: string; parent?: string } = {}): Promise<void> {
    const t = await this.container(id);
    const meta = this.get(id, t.home, name);
    const parent = opts.parent ? this.get(id, t.home, opts.parent) : undefined;
    const driver = await t.driver(meta.driver);
    const view = await driver.view(meta.ref);
    const tmp = mkdtempSync("/tmp/nexcage-export-");
    try {
      const old = new Map((parent?.manifest.entries ?? []).map((e) => [e.path, e]));
      const same = (e: SnapshotMeta["manifest"]["entries"][number]) => {
        const o = old.get(e.path);
        return o && e.type !== "d" && o.type === e.type && o.mode === e.mode && o.uid === e.uid && o.gid === e.gid && o.sha256 === e.sha256 && o.target === e.target && o.rdev === e.rdev;
      };
      const paths = meta.manifest.entries.filter((e) => !same(e)).map((e) => (e.path ? `./${e.path}` : "."));
      writeFileSync(`${tmp}/list`, paths.map((p) => `${p}\0`).join(""));
      // zfs snapshots travel as a zfs send stream (incremental with -i), everything else as the tree
      if (isZfs(driver)) {
        await driver.send(meta.ref, parent?.ref, `${tmp}/zfs.stream`);
        writeFileSync(`${tmp}/nexcage-snapshot.json`, JSON.stringify({ ...meta, zfsStream: true, ...(parent ? { exportParent: parent.name } : {}) }));
        const z = Bun.spawn(["tar", "-cf", opts.output ?? "-", "-C", tmp, "nexcage-snapshot.json", "zfs.stream"], { stdin: "ignore", stdout: opts.output ? "ignore" : "inherit", stderr: "pipe" });
        const [zerr, zcode] = await Promise.all([new Response(z.stderr).text(), z.exited]);
        if (zcode !== 0) throw new NexcageError("failure", `export: tar failed: ${zerr.trim()}`);
        return;
      }
      writeFileSync(`${tmp}/nexcage-snapshot.json`, JSON.stringify({ ...meta, ...(parent ? { exportParent: parent.name } : {}) }));
      const argv = ["tar", "--numeric-owner", "-cf", opts.output ?? "-", "-C", tmp, "nexcage-snapshot.json", "-C", view.path, "--no-recursion", "--transform", "s,^\\.,rootfs,", "--null", "--verbatim-files-from", "-T", `${tmp}/list`];
      const p = Bun.spawn(argv, { stdin: "ignore", stdout: opts.output ? "ignore" : "inherit", stderr: "pipe" });
      const [err, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
      if (code !== 0) throw new NexcageError("failure", `export: tar failed: ${err.trim()}`);
    } finally {
      await view.close();
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  /** Read an export (file or stdin), rebuild the tree (onto its parent when incremental), check every file
   *  against the manifest, and only then keep it as snapshot `name` of id. */
  async import(id: string, name: string, input?: string): Promise<SnapshotMeta> {
    validateSnapshotName(name);
    return this.lock(id, async () => {
      const t = await this.container(id);
      if (this.list(id, t.home).some((s) => s.name === name)) throw new NexcageError("exists", `snapshot ${name} of ${id} already exists`);
      const driver = await t.driver();
      const home = t.home;
      mkdirSync(home, { recursive: true });
      // on the snapshot home's filesystem, so the finished tree can be moved or reflinked into place
      const tmp = mkdtempSync(`${home}/.import-`);
      try {
        const x = Bun.spawn(["tar", "--numeric-owner", "-xpf", input ?? "-", "-C", tmp], { stdin: input ? "ignore" : "inherit", stdout: "ignore", stderr: "pipe" });
        const [err, code] = await Promise.all([new Response(x.stderr).text(), x.exited]);
        if (code !== 0) throw new NexcageError("invalidSpec", `import: not a nexcage snapshot export: ${err.trim()}`);
        let meta: SnapshotMeta & { exportParent?: string; zfsStream?: boolean };
        try {
          meta = JSON.parse(readFileSync(`${tmp}/nexcage-snapshot.json`, "utf8"));
        } catch {
          throw new NexcageError("invalidSpec", "import: the stream has no nexcage-snapshot.json");
        }
        if (meta.zfsStream) return await this.importZfs(id, t, name, meta, `${tmp}/zfs.stream`);
        let tree = `${tmp}/rootfs`;
        if (meta.exportParent) {
          const parent = this.list(id, t.home).find((s) => s.name === meta.exportParent);
          if (!parent) throw new NexcageError("notFound", `import: the export is incremental on snapshot ${meta.exportParent}, which ${id} does not have: import that first`);
          const pv = await (await t.driver(parent.driver)).view(parent.ref);
          try {
            const full = `${tmp}/full`;
            const cp = Bun.spawnSync(["cp", "-a", "--reflink=auto", pv.path, full]);
            if (cp.exitCode !== 0) throw new NexcageError("storage", `import: cannot copy parent ${parent.name}: ${cp.stderr.toString().trim()}`);
            const ap = Bun.spawnSync(["cp", "-a", "--reflink=auto", `${tree}/.`, full]);
            if (ap.exitCode !== 0) throw new NexcageError("storage", `import: cannot apply changes: ${ap.stderr.toString().trim()}`);
            // what the parent had and this snapshot does not
            const want = new Set(meta.manifest.entries.map((e) => e.path));
            for (const e of scan(full).reverse()) if (e.path && !want.has(e.path)) rmSync(`${full}/${e.path}`, { recursive: true, force: true });
            tree = full;
          } finally {
            await pv.close();
          }
        }
        const diffs = await verifyTree(tree, meta.manifest);
        if (diffs.length) {
          throw new NexcageError("integrity", `import: the stream does not match its manifest (${diffs.length} differences, first: ${diffs[0]?.path}: ${diffs[0]?.what}); nothing imported`);
        }
        const ref = await driver.adopt(name, tree);
        const { exportParent: _p, zfsStream: _z, ...rest } = meta;
        const kept: SnapshotMeta = { ...rest, name, container: id, driver: driver.kind, ref, created: new Date().toISOString() };
        const parent = this.list(id, t.home).at(-1);
        if (parent) kept.parent = parent.name;
        else delete kept.parent;
        this.save(t.home, kept);
        return kept;
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    });
  }
}

/** "7d", "12h", "30m", "90s" → ms */
export function parseAge(s: string): number {
  const m = /^(\d+)([smhdw])$/.exec(s);
  if (!m) throw new NexcageError("usage", `invalid age ${JSON.stringify(s)}: a number and s, m, h, d or w (e.g. 7d)`);
  return Number(m[1]) * { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7, w: 6.048e8 }[m[2] as "s"];
}

export interface Retention {
  keepLast?: number;
  maxAge?: number;
}

/** which snapshots a policy removes, oldest first: a snapshot stays when it is among the newest keepLast or
 *  younger than maxAge (the union, as backup tools keep); with neither, nothing goes */
export function toPrune(snaps: SnapshotMeta[], policy: Retention, now = Date.now()): SnapshotMeta[] {
  if (policy.keepLast === undefined && policy.maxAge === undefined) return [];
  const sorted = [...snaps].sort((a, b) => a.created.localeCompare(b.created));
  const keepFrom = sorted.length - (policy.keepLast ?? 0);
  return sorted.filter((s, i) => {
    const recent = policy.keepLast !== undefined && i >= keepFrom;
    const young = policy.maxAge !== undefined && now - Date.parse(s.created) <= policy.maxAge;
    return !recent && !young;
  });
}
