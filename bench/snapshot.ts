#!/usr/bin/env bun
// Snapshot and restore latency per driver, and manifest/verify throughput, side by side in one run on
// generated rootfs trees of ~10 MB, ~100 MB and ~1 GB (many small files and a few big ones):
//   nexcage btrfs driver    subvolume rootfs on a loop-mounted btrfs
//   btrfs CLI               `btrfs subvolume snapshot -r` / restore by a writable snapshot + rename
//   nexcage zfs driver      a dataset on a zfs-fuse pool (the zfs CLI path; where zfs-fuse is installed)
//   zfs CLI                 `zfs snapshot` / `zfs rollback` by hand
//   nexcage dir driver      the copy-based path, on this host's ext4
//   cp -a --reflink=auto    the same copy by hand (ext4: bytes)
//   lxc-snapshot            an LXC container with that tree as its dir rootfs (snapshot, then -r restore)
// and hashing: nexcage's verify (parallel, streamed) against `sha256sum` over the same files.
// Prints medians and ratios.  bun bench/snapshot.ts [--iterations N] [--sizes 10,100,1000]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { driverFor, type SnapshotDriver } from "../src/snapshot/drivers.ts";
import { buildManifest, verifyTree } from "../src/snapshot/manifest.ts";
import { median, timed } from "./lib.ts";

const { values } = parseArgs({ options: { iterations: { type: "string", default: "5" }, sizes: { type: "string", default: "10,100,1000" } } });
const N = Number(values.iterations);
const SIZES = String(values.sizes).split(",").map(Number);
const work = mkdtempSync("/var/tmp/nexcage-bench-snap-");
const btrfsMnt = join(work, "btrfs");

function sh(cmd: string): number {
  const t0 = performance.now();
  const r = Bun.spawnSync(["sh", "-c", cmd], { stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd}: ${r.stderr.toString()}`);
  return performance.now() - t0;
}

/** ~mb MB: 60% in files of 1-64 KiB, 40% in 4 big files; content pseudo-random per file */
function generate(dir: string, mb: number): { files: number; bytes: number } {
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const pool = Buffer.alloc(8 * 2 ** 20);
  for (let i = 0; i < pool.length; i += 4) pool.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, i);
  const total = mb * 2 ** 20;
  let bytes = 0;
  let files = 0;
  const put = (path: string, size: number) => {
    const off = Math.floor(rnd() * (pool.length - Math.min(size, pool.length)));
    const chunks: Buffer[] = [];
    for (let left = size; left > 0; left -= pool.length) chunks.push(pool.subarray(off % pool.length, off % pool.length + Math.min(left, pool.length - (off % pool.length))));
    writeFileSync(path, Buffer.concat(chunks).subarray(0, size));
    bytes += size;
    files++;
  };
  for (let d = 0; bytes < total * 0.6; d++) {
    const sub = join(dir, `usr/lib/pkg${d}`);
    mkdirSync(sub, { recursive: true });
    for (let f = 0; f < 100 && bytes < total * 0.6; f++) put(join(sub, `f${f}.so`), 1024 + Math.floor(rnd() * 63 * 1024));
  }
  mkdirSync(join(dir, "var/data"), { recursive: true });
  for (let b = 0; b < 4; b++) put(join(dir, `var/data/big${b}.bin`), Math.floor((total * 0.4) / 4));
  return { files, bytes };
}

type Row = { snap: number[]; restore: number[] };
const rows = new Map<string, Row>();
const row = (k: string) => rows.get(k) ?? (rows.set(k, { snap: [], restore: [] }).get(k) as Row);
const hashRows: { size: number; bytes: number; nexcage: number; sha256sum: number; manifest: number }[] = [];

const zfs = Bun.which("zfs-fuse") !== null;
try {
  if (zfs) {
    if (Bun.spawnSync(["zpool", "list"]).exitCode !== 0) {
      Bun.spawn(["zfs-fuse", "--no-daemon"], { stdio: ["ignore", "ignore", "ignore"] }).unref();
      for (let i = 0; i < 50 && Bun.spawnSync(["zpool", "list"]).exitCode !== 0; i++) await Bun.sleep(100);
    }
    Bun.spawnSync(["zpool", "destroy", "-f", "nxbench"]);
    sh(`truncate -s 3G ${work}/zpool.img && zpool create -f -m none nxbench ${work}/zpool.img`);
  }
  sh(`truncate -s 8G ${work}/btrfs.img && mkfs.btrfs -q ${work}/btrfs.img && mkdir -p ${btrfsMnt} && mount -o loop ${work}/btrfs.img ${btrfsMnt}`);
  for (const mb of SIZES) {
    const iters = mb >= 1000 ? Math.max(3, Math.ceil(N / 2)) : N;
    // the same tree on btrfs (as a subvolume) and on ext4
    const bt = join(btrfsMnt, `t${mb}`);
    mkdirSync(bt);
    sh(`btrfs subvolume create ${bt}/rootfs`);
    const info = generate(`${bt}/rootfs`, mb);
    const ext = join(work, `ext${mb}`);
    mkdirSync(ext);
    sh(`cp -a ${bt}/rootfs ${ext}/rootfs`);
    const label = `${mb} MB`;
    console.error(`tree ${label}: ${info.files} files, ${(info.bytes / 2 ** 20).toFixed(0)} MiB`);

    const drivers: [string, SnapshotDriver][] = [
      ["nexcage btrfs", await driverFor(`${bt}/rootfs`)],
      ["nexcage dir (ext4)", await driverFor(`${ext}/rootfs`)],
    ];
    const zds = zfs ? `nxbench/t${mb}` : "";
    if (zfs) {
      sh(`zfs create -o mountpoint=${work}/zfs${mb} ${zds} && cp -a ${bt}/rootfs/. ${work}/zfs${mb}/`);
      drivers.push(["nexcage zfs (zfs-fuse)", await driverFor(`${work}/zfs${mb}`)]);
    }
    for (let i = 0; i <= iters; i++) {
      for (const [name, d] of drivers) {
        let ref = "";
        const s = await timed(async () => (ref = await d.create(`b${i}`)));
        const r = await timed(async () => (await d.prepareRestore(ref)).commit());
        await d.delete(ref);
        if (i > 0) row(`${name}|${label}`).snap.push(s), row(`${name}|${label}`).restore.push(r);
      }
      // raw btrfs: the same two steps by hand
      const s = sh(`btrfs subvolume snapshot -r ${bt}/rootfs ${bt}/raw${i}`);
      const r = sh(`btrfs subvolume snapshot ${bt}/raw${i} ${bt}/rootfs.new && mv ${bt}/rootfs ${bt}/rootfs.old && mv ${bt}/rootfs.new ${bt}/rootfs && btrfs subvolume delete ${bt}/rootfs.old`);
      sh(`btrfs subvolume delete ${bt}/raw${i}`);
      if (zfs) {
        const zs = sh(`zfs snapshot ${zds}@raw${i}`);
        const zr = sh(`zfs rollback ${zds}@raw${i}`);
        for (let k = 0; k < 20 && Bun.spawnSync(["zfs", "destroy", `${zds}@raw${i}`]).exitCode !== 0; k++) Bun.sleepSync(100);
        if (i > 0) row(`zfs CLI (zfs-fuse)|${label}`).snap.push(zs), row(`zfs CLI (zfs-fuse)|${label}`).restore.push(zr);
      }
      const c = sh(`cp -a --reflink=auto ${ext}/rootfs ${ext}/copy${i}`);
      const cr = sh(`cp -a --reflink=auto ${ext}/copy${i} ${ext}/rootfs.new && mv ${ext}/rootfs ${ext}/rootfs.old && mv ${ext}/rootfs.new ${ext}/rootfs && rm -rf ${ext}/rootfs.old ${ext}/copy${i}`);
      if (i > 0) {
        row(`btrfs CLI|${label}`).snap.push(s), row(`btrfs CLI|${label}`).restore.push(r);
        row(`cp -a --reflink=auto (ext4)|${label}`).snap.push(c), row(`cp -a --reflink=auto (ext4)|${label}`).restore.push(cr);
      }
    }
    // hashing (before lxc-snapshot, whose restore replaces the tree): a manifest (what snapshot create adds
    // after the freeze) and verify vs sha256sum, warm cache
    sh(`find ${ext}/rootfs -type f -exec cat {} + > /dev/null`);
    const hs: number[] = [], ss: number[] = [], ms: number[] = [];
    for (let i = 0; i < Math.min(iters, 3); i++) {
      let manifest: Awaited<ReturnType<typeof buildManifest>> | undefined;
      ms.push(await timed(async () => (manifest = await buildManifest(`${ext}/rootfs`, { progress: false }))));
      hs.push(await timed(async () => verifyTree(`${ext}/rootfs`, manifest as never, false)));
      ss.push(sh(`cd ${ext}/rootfs && find . -type f -print0 | xargs -0 sha256sum > /dev/null`));
    }
    hashRows.push({ size: mb, bytes: info.bytes, nexcage: median(hs), sha256sum: median(ss), manifest: median(ms) });
    // lxc-snapshot on a dir-backed LXC container over the ext4 tree
    const lxcpath = join(work, `lxc${mb}`);
    mkdirSync(join(lxcpath, "ct"), { recursive: true });
    sh(`mv ${ext}/rootfs ${lxcpath}/ct/rootfs`); // where lxc-create would have put it
    writeFileSync(join(lxcpath, "ct/config"), `lxc.rootfs.path = dir:${lxcpath}/ct/rootfs\nlxc.uts.name = ct\n`);
    for (let i = 0; i <= Math.min(iters, 3); i++) {
      const s = sh(`lxc-snapshot -P ${lxcpath} -n ct`);
      const r = sh(`lxc-snapshot -P ${lxcpath} -n ct -r snap0`);
      sh(`lxc-snapshot -P ${lxcpath} -n ct -d snap0`);
      if (i > 0) row(`lxc-snapshot (ext4)|${label}`).snap.push(s), row(`lxc-snapshot (ext4)|${label}`).restore.push(r);
    }
    rmSync(ext, { recursive: true, force: true });
    rmSync(lxcpath, { recursive: true, force: true });
    sh(`btrfs subvolume delete ${bt}/rootfs`);
  }

  console.log(`snapshot create and restore, median ms (${N} iterations; 1 GB: ${Math.max(3, Math.ceil(N / 2))}; lxc-snapshot: up to 3)\n`);
  console.log(`${"subject".padEnd(30)}${SIZES.map((s) => `${s} MB snap`.padStart(14) + `restore`.padStart(10) + `s+r`.padStart(10)).join("")}`);
  const subjects = [...new Set([...rows.keys()].map((k) => k.split("|")[0] as string))];
  for (const sub of subjects) {
    let line = sub.padEnd(30);
    for (const mb of SIZES) {
      const r = rows.get(`${sub}|${mb} MB`);
      line += r ? `${median(r.snap).toFixed(1).padStart(14)}${median(r.restore).toFixed(1).padStart(10)}${(median(r.snap) + median(r.restore)).toFixed(1).padStart(10)}` : "-".padStart(34);
    }
    console.log(line);
  }
  const sr = (s: string, mb: number) => {
    const r = rows.get(`${s}|${mb} MB`) as Row;
    return median(r.snap) + median(r.restore);
  };
  console.log("\nratios (snapshot+restore):");
  for (const mb of SIZES) {
    const z = zfs ? `; nexcage zfs ÷ zfs CLI = ${(sr("nexcage zfs (zfs-fuse)", mb) / sr("zfs CLI (zfs-fuse)", mb)).toFixed(2)}` : "";
    console.log(`  ${mb} MB: nexcage dir ÷ nexcage btrfs = ${(sr("nexcage dir (ext4)", mb) / sr("nexcage btrfs", mb)).toFixed(1)}×; nexcage btrfs ÷ btrfs CLI = ${(sr("nexcage btrfs", mb) / sr("btrfs CLI", mb)).toFixed(2)}${z}`);
  }
  console.log(`\nhashing, warm page cache, median ms: manifest = what create adds after the freeze; verify vs sha256sum over the same files\n`);
  console.log(`${"tree".padEnd(10)}${"manifest".padStart(10)}${"verify".padStart(10)}${"sha256sum".padStart(11)}${"verify MB/s".padStart(13)}${"sha256sum MB/s".padStart(16)}${"verify ÷ sha256sum throughput".padStart(31)}`);
  for (const h of hashRows) {
    const v = h.bytes / 2 ** 20 / (h.nexcage / 1000);
    const s = h.bytes / 2 ** 20 / (h.sha256sum / 1000);
    console.log(`${`${h.size} MB`.padEnd(10)}${h.manifest.toFixed(1).padStart(10)}${h.nexcage.toFixed(1).padStart(10)}${h.sha256sum.toFixed(1).padStart(11)}${v.toFixed(0).padStart(13)}${s.toFixed(0).padStart(16)}${(v / s).toFixed(2).padStart(31)}`);
  }
} finally {
  Bun.spawnSync(["sh", "-c", `umount ${btrfsMnt}`]);
  if (zfs) for (let i = 0; i < 30 && Bun.spawnSync(["zpool", "destroy", "-f", "nxbench"]).exitCode !== 0; i++) Bun.sleepSync(200);
  rmSync(work, { recursive: true, force: true });
}
