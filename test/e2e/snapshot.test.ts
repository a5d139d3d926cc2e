// One snapshot suite for every driver on a real filesystem: dir (a plain directory), btrfs (a subvolume on
// a loop-mounted btrfs), overlay (an overlay mount), zfs (a dataset on a zfs-fuse pool: the CLI path).
// A running crun container writes into its rootfs between snapshots; restore, verify, prune, export and
// import are checked from inside the container and on disk. Then the integrity and failure cases.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExitCode } from "../../src/core/errors.ts";
import { ensureRootfs, makeBundle } from "../fixtures/busybox.ts";
import { hostSetup, runtimeFor } from "./helpers.ts";

const have = (cmd: string) => Bun.spawnSync(["sh", "-c", `command -v ${cmd}`]).exitCode === 0;
const sh = (cmd: string) => {
  const r = Bun.spawnSync(["sh", "-c", cmd], { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
};
const work = mkdtempSync(join(tmpdir(), "nexcage-snap-"));
// pool names of this run only: zfs-fuse can keep a pool "busy" for a while after its last use
const POOL = `nxsnap${process.pid}`;
const DEP = `nxdep${process.pid}`;

/** a bundle whose rootfs lives on the driver's filesystem; returns its dir and a cleanup */
type Setup = () => Promise<{ bundle: string; cleanup: () => void }>;

function bundleAt(dir: string): string {
  // config.json from the fixture, rootfs already in place (writable)
  const b = makeBundle({ args: ["sleep", "1000"] });
  const c = b.config;
  c.root = { path: "rootfs", readonly: false };
  writeFileSync(join(dir, "config.json"), JSON.stringify(c));
  b.cleanup();
  return dir;
}

const setups: Record<string, { available: boolean; setup: Setup }> = {
  dir: {
    available: true,
    setup: async () => {
      const dir = mkdtempSync(join(work, "dir-"));
      cpSync(ensureRootfs(), join(dir, "rootfs"), { recursive: true, verbatimSymlinks: true });
      return { bundle: bundleAt(dir), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
  btrfs: {
    available: have("mkfs.btrfs"),
    setup: async () => {
      const img = join(work, "btrfs.img");
      const mnt = join(work, "btrfs");
      mkdirSync(mnt, { recursive: true });
      expect(sh(`truncate -s 512M ${img} && mkfs.btrfs -q -f ${img} && mount -o loop ${img} ${mnt}`).code).toBe(0);
      const dir = join(mnt, "bundle");
      mkdirSync(dir);
      expect(sh(`btrfs subvolume create ${dir}/rootfs && cp -a ${ensureRootfs()}/. ${dir}/rootfs/`).code).toBe(0);
      return { bundle: bundleAt(dir), cleanup: () => void sh(`umount -l ${mnt}`) };
    },
  },
  overlay: {
    available: true,
    setup: async () => {
      const dir = mkdtempSync(join(work, "ovl-"));
      for (const d of ["lower", "upper", "work", "rootfs"]) mkdirSync(join(dir, d));
      cpSync(ensureRootfs(), join(dir, "lower"), { recursive: true, verbatimSymlinks: true });
      expect(sh(`mount -t overlay overlay -o lowerdir=${dir}/lower,upperdir=${dir}/upper,workdir=${dir}/work ${dir}/rootfs`).code).toBe(0);
      return { bundle: bundleAt(dir), cleanup: () => void sh(`umount -l ${dir}/rootfs; rm -rf ${dir}`) };
    },
  },
  zfs: {
    available: have("zfs-fuse"),
    setup: async () => {
      if (sh("zpool list").code !== 0) {
        Bun.spawn(["zfs-fuse", "--no-daemon"], { stdio: ["ignore", "ignore", "ignore"] }).unref();
        for (let i = 0; i < 50 && sh("zpool list").code !== 0; i++) await Bun.sleep(100);
      }
      sh(`zpool destroy -f ${POOL}`);
      const img = join(work, "zpool.img");
      expect(sh(`truncate -s 256M ${img} && zpool create -f -m /${POOL} ${POOL} ${img}`).code).toBe(0);
      const dir = join(work, "zfs-bundle");
      mkdirSync(dir);
      expect(sh(`zfs create -o mountpoint=${dir}/rootfs ${POOL}/ct && cp -a ${ensureRootfs()}/. ${dir}/rootfs/`).code).toBe(0);
      return {
        bundle: bundleAt(dir),
        cleanup: () => {
          for (let i = 0; i < 30 && sh(`timeout 10 zpool destroy -f ${POOL}`).code !== 0; i++) Bun.sleepSync(200);
        },
      };
    },
  },
};

beforeAll(() => hostSetup());
afterAll(() => {
  sh(`umount -l ${join(work, "btrfs")} 2>/dev/null`);
  rmSync(work, { recursive: true, force: true });
});

describe.each(Object.keys(setups))("snapshots on %s", (kind) => {
  const s = setups[kind] as (typeof setups)[string];
  const rt = runtimeFor("crun");
  const { nx } = rt;
  const id = `snap-${kind}`;
  let bundle = "";
  let cleanup = () => {};
  const exec = (cmd: string) => nx(["exec", id, "sh", "-c", cmd]);
  const snap = (...a: string[]) => nx(["snapshot", ...a]);
  const status = () => JSON.parse(nx(["state", id]).stdout).status;
  const create = () => Bun.spawnSync([...rt.argv, "run", "-d", "--bundle", bundle, id], { stdout: "ignore", stderr: "inherit" }).exitCode;

  beforeAll(async () => {
    if (!s.available) return;
    ({ bundle, cleanup } = await s.setup());
    expect(create()).toBe(0);
  });
  afterAll(() => {
    nx(["delete", "--force", id]);
    cleanup();
    rmSync(rt.dir, { recursive: true, force: true });
  });

  test.skipIf(!s.available)(`a running container is frozen for the snapshot and thawed after; the ${kind} driver is picked; a manifest covers every file (skipped only where ${kind} is unavailable)`, () => {
    expect(exec("echo v1 > /root/data").code).toBe(0);
    const r = snap("create", id, "first", "--format", "json");
    expect(r.stderr).toBe("");
    const m = JSON.parse(r.stdout);
    expect(m).toMatchObject({ name: "first", container: id, driver: kind });
    expect(m.frozenMs).toBeGreaterThan(0);
    expect(status()).toBe("running");
    const files = Number(sh(`find ${bundle}/rootfs -type f | wc -l`).out.trim());
    expect(m.files).toBe(files);
  });

  test.skipIf(!s.available)("a second snapshot after changes; both verify; list in order with the parent", () => {
    expect(exec("echo v2 > /root/data && rm /bin/ls && mkdir /root/new").code).toBe(0);
    expect(snap("create", id, "second").code).toBe(0);
    const list = JSON.parse(snap("list", id, "--format", "json").stdout);
    expect(list.map((x: { name: string; parent?: string }) => [x.name, x.parent ?? null])).toEqual([["first", null], ["second", "first"]]);
    expect(snap("verify", id, "first").stdout).toBe(`snapshot first of ${id}: every file matches its manifest\n`);
    expect(snap("verify", id, "second").code).toBe(0);
  });

  test.skipIf(!s.available)("restore of a running container is refused without --force, and changes nothing", () => {
    const r = snap("restore", id, "first");
    expect(r.code).toBe(ExitCode.badState);
    expect(r.stderr).toContain("restore needs it stopped (or --force");
    expect(exec("cat /root/data").stdout).toBe("v2\n");
  });

  test.skipIf(!s.available)("restore --force --verify: stopped, restored, restarted, and proven equal to the manifest", () => {
    // zfs: `first` is not the latest, so its clone takes the dataset's place instead of a rollback
    expect(exec("echo v3 > /root/data").code).toBe(0);
    const r = snap("restore", id, "first", "--force", "--verify");
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe(`restored ${id} to first (restarted), verified\n`);
    expect(status()).toBe("running");
    expect(exec("cat /root/data; test -e /bin/ls && echo ls-back; test -d /root/new || echo new-gone").stdout).toBe("v1\nls-back\nnew-gone\n");
  });

  test.skipIf(!s.available)("restore of a stopped container, then delete and prune", () => {
    expect(nx(["kill", id, "KILL"]).code).toBe(0);
    for (let i = 0; i < 100 && status() !== "stopped"; i++) Bun.sleepSync(20);
    expect(readFileSync(`${bundle}/rootfs/root/data`, "utf8")).toBe("v1\n");
    writeFileSync(`${bundle}/rootfs/root/data`, "v9\n");
    expect(snap("restore", id, "first").stdout).toBe(`restored ${id} to first\n`);
    expect(readFileSync(`${bundle}/rootfs/root/data`, "utf8")).toBe("v1\n");
    expect(snap("create", id, "third").code).toBe(0);
    const dry = snap("prune", id, "--keep-last", "1", "--dry-run");
    expect(dry.stdout).toContain(kind === "zfs" ? "would delete second\n" : "would delete first\n");
    expect(JSON.parse(snap("list", id, "--format", "json").stdout).length).toBeGreaterThan(1);
    const pruned = snap("prune", id, "--keep-last", "1");
    expect(pruned.code).toBe(0);
    const left = () => JSON.parse(snap("list", id, "--format", "json").stdout).map((x: { name: string }) => x.name);
    if (kind === "zfs") {
      // the rootfs now runs on clones of `first`: it stays, and prune says why
      expect(pruned.stdout).toMatch(new RegExp(`kept first: in use by zfs clone ${POOL}/ct-r\\w+`));
      expect(left()).toEqual(["first", "third"]);
    } else {
      expect(left()).toEqual(["third"]);
    }
    expect(snap("delete", id, "third").code).toBe(0);
    expect(nx(["delete", id]).code).toBe(0);
  });
});

describe("integrity, dependencies and failures", () => {
  const rt = runtimeFor("crun");
  const { nx } = rt;
  const dir = mkdtempSync(join(work, "int-"));
  cpSync(ensureRootfs(), join(dir, "rootfs"), { recursive: true, verbatimSymlinks: true });
  const bundle = bundleAt(dir);
  const id = "integrity";
  const snap = (...a: string[]) => nx(["snapshot", ...a]);
  const home = join(dir, ".nexcage-snapshots/rootfs");

  beforeAll(() => {
    expect(Bun.spawnSync([...rt.argv, "run", "-d", "--bundle", bundle, id], { stdout: "ignore", stderr: "inherit" }).exitCode).toBe(0);
  });
  afterAll(() => {
    nx(["delete", "--force", id]);
    rmSync(rt.dir, { recursive: true, force: true });
  });

  test("verify names a flipped byte, a deleted file and a changed mode, each", () => {
    expect(snap("create", id, "good").code).toBe(0);
    const passwd = join(home, "good/etc/passwd");
    const bytes = readFileSync(passwd);
    bytes[0] = (bytes[0] as number) ^ 0x01; // same size, one bit
    writeFileSync(passwd, bytes);
    rmSync(join(home, "good/etc/group"));
    chmodSync(join(home, "good/bin/busybox"), 0o700);
    const r = snap("verify", id, "good");
    expect(r.code).toBe(ExitCode.integrity);
    expect(r.stdout).toBe("/bin/busybox: mode 0755 → 0700\n/etc/group: missing\n/etc/passwd: content differs (sha256)\n");
    expect(r.stderr).toBe(`nexcage: snapshot good of ${id}: 3 differences from its manifest\n`);
    expect(snap("delete", id, "good").code).toBe(0);
  });

  test("export and import, full and incremental, verified on import; a tampered stream is refused whole", () => {
    expect(nx(["exec", id, "sh", "-c", "echo base > /root/f"]).code).toBe(0);
    expect(snap("create", id, "base").code).toBe(0);
    expect(nx(["exec", id, "sh", "-c", "echo next > /root/f; echo more > /root/g"]).code).toBe(0);
    expect(snap("create", id, "next").code).toBe(0);
    const full = join(work, "next-full.tar");
    const inc = join(work, "next-inc.tar");
    expect(snap("export", id, "next", "-o", full).code).toBe(0);
    expect(snap("export", id, "next", "--parent", "base", "-o", inc).code).toBe(0);
    const incFiles = sh(`tar -tf ${inc} | grep -v '/$'`).out.trim().split("\n");
    expect(incFiles.sort()).toEqual(["nexcage-snapshot.json", "rootfs/root/f", "rootfs/root/g"]);

    expect(snap("import", id, "copy-full", "-i", full).stdout).toContain("imported snapshot copy-full");
    expect(snap("import", id, "copy-inc", "-i", inc).stdout).toContain("imported snapshot copy-inc");
    expect(readFileSync(join(home, "copy-inc/root/g"), "utf8")).toBe("more\n");
    expect(snap("verify", id, "copy-inc").code).toBe(0);

    // stdin works too, and an incremental export needs its parent
    const fromStdin = Bun.spawnSync([...rt.argv, "snapshot", "import", id, "via-stdin"], { stdin: Bun.file(full), stdout: "pipe", stderr: "pipe" });
    expect(fromStdin.exitCode).toBe(0);
    expect(snap("delete", id, "base").code).toBe(0);
    const orphan = snap("import", id, "orphan", "-i", inc);
    expect(orphan.code).toBe(ExitCode.notFound);
    expect(orphan.stderr).toContain("incremental on snapshot base");

    // tamper: change a file inside the stream, keep its manifest
    const t = join(work, "tamper");
    mkdirSync(t);
    expect(sh(`tar -xf ${full} -C ${t} && echo evil > ${t}/rootfs/root/f && tar -cf ${t}.tar -C ${t} .`).code).toBe(0);
    const bad = snap("import", id, "tampered", "-i", `${t}.tar`);
    expect(bad.code).toBe(ExitCode.integrity);
    expect(bad.stderr).toContain("/root/f: content differs (sha256)");
    expect(existsSync(join(home, "tampered"))).toBe(false);
    expect(readdirSync(home).filter((f) => f.startsWith(".import-"))).toEqual([]);
  });

  test("a snapshot that fails leaves the container running (thawed) and no snapshot behind", () => {
    writeFileSync(join(home, "blocked"), "not a directory"); // the dir driver's copy target
    const r = snap("create", id, "blocked");
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("dir snapshot");
    expect(JSON.parse(nx(["state", id]).stdout).status).toBe("running");
    expect(existsSync(join(home, "blocked.json"))).toBe(false);
    rmSync(join(home, "blocked"));
  });

  test("a restore that fails leaves the container as it was: running, files unchanged", () => {
    expect(snap("create", id, "gone").code).toBe(0);
    rmSync(join(home, "gone"), { recursive: true }); // its data vanished
    expect(nx(["exec", id, "sh", "-c", "echo now > /root/f"]).code).toBe(0);
    const r = snap("restore", id, "gone", "--force");
    expect(r.code).toBe(ExitCode.storage);
    expect(r.stderr).toContain("snapshot");
    expect(JSON.parse(nx(["state", id]).stdout).status).toBe("running");
    expect(nx(["exec", id, "cat", "/root/f"]).stdout).toBe("now\n");
  });

  test("names are validated; unknown snapshots and actions are clear errors", () => {
    expect(snap("create", id, "1bad").code).toBe(ExitCode.usage);
    expect(snap("create", id, "current").stderr).toContain("reserved");
    expect(snap("verify", id, "nope").code).toBe(ExitCode.notFound);
    expect(snap("frobnicate", id).code).toBe(ExitCode.usage);
    expect(snap("prune", id).stderr).toContain("prune needs --keep-last");
  });

  test.skipIf(!have("zfs-fuse"))("zfs: a snapshot with a clone is never deleted, prune keeps it and says why; zfs send streams, full and incremental, verified on import (skipped only without zfs-fuse)", async () => {
    if (sh("zpool list").code !== 0) {
      Bun.spawn(["zfs-fuse", "--no-daemon"], { stdio: ["ignore", "ignore", "ignore"] }).unref();
      for (let i = 0; i < 50 && sh("zpool list").code !== 0; i++) await Bun.sleep(100);
    }
    sh(`zpool destroy -f ${DEP}`);
    const img = join(work, "dep.img");
    expect(sh(`truncate -s 128M ${img} && zpool create -f -m /${DEP} ${DEP} ${img}`).code).toBe(0);
    const zdir = join(work, "zdep");
    mkdirSync(zdir);
    expect(sh(`zfs create -o mountpoint=${zdir}/rootfs ${DEP}/ct && cp -a ${ensureRootfs()}/. ${zdir}/rootfs/`).code).toBe(0);
    bundleAt(zdir);
    expect(Bun.spawnSync([...rt.argv, "create", "--bundle", zdir, "zdep"], { stdout: "ignore", stderr: "inherit" }).exitCode).toBe(0);
    try {
      expect(snap("create", "zdep", "held").code).toBe(0);
      expect(sh(`zfs clone ${DEP}/ct@held ${DEP}/clone`).code).toBe(0);
      const del = snap("delete", "zdep", "held");
      expect(del.code).toBe(ExitCode.badState);
      expect(del.stderr).toContain(`in use by zfs clone ${DEP}/clone`);
      expect(snap("prune", "zdep", "--keep-last", "0").stdout).toBe(`kept held: in use by zfs clone ${DEP}/clone\n`);
      expect(sh("zfs list -t snapshot -H -o name").out).toContain(`${DEP}/ct@held`);

      // export as zfs send streams (full, then incremental) into a second zfs container; verified on import
      const ddir = join(work, "zdst");
      mkdirSync(ddir);
      expect(sh(`zfs create -o mountpoint=${ddir}/rootfs ${DEP}/dst && cp -a ${ensureRootfs()}/. ${ddir}/rootfs/`).code).toBe(0);
      bundleAt(ddir);
      expect(Bun.spawnSync([...rt.argv, "create", "--bundle", ddir, "zdst"], { stdout: "ignore", stderr: "inherit" }).exitCode).toBe(0);
      writeFileSync(join(zdir, "rootfs/root/later"), "later\n");
      expect(snap("create", "zdep", "later").code).toBe(0);
      const full = join(work, "held.zsnap");
      const inc = join(work, "later.zsnap");
      expect(snap("export", "zdep", "held", "-o", full).code).toBe(0);
      expect(snap("export", "zdep", "later", "--parent", "held", "-o", inc).code).toBe(0);
      expect(sh(`tar -tf ${inc}`).out).toBe("nexcage-snapshot.json\nzfs.stream\n");
      expect(snap("import", "zdst", "held", "-i", full).stderr).toBe("");
      const imp = snap("import", "zdst", "later", "-i", inc);
      expect(imp.stderr).toBe("");
      expect(sh("zfs list -t snapshot -H -o name").out).toContain(`${DEP}/dst-import-held@later`);
      expect(snap("verify", "zdst", "later").code).toBe(0);
      expect(snap("restore", "zdst", "later", "--force").stderr).toBe(""); // created counts as live: --force
      expect(readFileSync(join(ddir, "rootfs/root/later"), "utf8")).toBe("later\n");
      // a stream whose bytes were changed is refused, and nothing of it stays
      const bad = join(work, "bad.zsnap");
      const t2 = join(work, "badz");
      mkdirSync(t2);
      expect(sh(`tar -xf ${full} -C ${t2} && printf 'XXXXXXXX' | dd of=${t2}/zfs.stream bs=1 seek=4000 conv=notrunc 2>/dev/null && tar -cf ${bad} -C ${t2} nexcage-snapshot.json zfs.stream`).code).toBe(0);
      const refused = snap("import", "zdst", "tampered", "-i", bad);
      expect(refused.code).not.toBe(0);
      expect(sh("zfs list -H -o name").out).not.toContain("import-tampered");
      nx(["delete", "--force", "zdst"]);
    } finally {
      nx(["delete", "--force", "zdep"]);
      nx(["delete", "--force", "zdst"]);
      for (let i = 0; i < 30 && sh(`timeout 10 zpool destroy -f ${DEP}`).code !== 0; i++) await Bun.sleep(200);
    }
  });
});

describe("checkpoint and restore", () => {
  const rt = runtimeFor("runc");
  const { nx } = rt;
  const dir = mkdtempSync(join(work, "ckpt-"));
  cpSync(ensureRootfs(), join(dir, "rootfs"), { recursive: true, verbatimSymlinks: true });
  const bundle = bundleAt(dir);
  const id = "ckpt";
  const criuWorks = Bun.spawnSync(["sh", "-c", "criu check 2>&1 | grep -q 'Looks good'"]).exitCode === 0;
  const run = () => Bun.spawnSync([...rt.argv, "run", "-d", "--bundle", bundle, id], { stdout: "ignore", stderr: "inherit" }).exitCode;

  afterAll(() => {
    nx(["delete", "--force", id]);
    rmSync(rt.dir, { recursive: true, force: true });
  });

  test("checkpoint --help and restore --help exit 0 (CRI-O probes them) and list runc's flags", () => {
    const c = nx(["checkpoint", "--help"]);
    expect(c.code).toBe(0);
    for (const f of ["--image-path", "--work-path", "--leave-running", "--tcp-established", "--file-locks", "--pre-dump", "--parent-path", "--manage-cgroups-mode", "--fs-only"]) expect(c.stdout).toContain(f);
    const r = nx(["restore", "--help"]);
    expect(r.code).toBe(0);
    for (const f of ["--detach", "--pid-file", "--console-socket", "--bundle", "--image-path"]) expect(r.stdout).toContain(f);
  });

  test(`CRIU ${criuWorks ? "works here: a real checkpoint and restore on runc" : "fails its check here: checkpoint and restore say why and point at --fs-only"}`, () => {
    expect(run()).toBe(0);
    const img = join(work, "ckpt-img");
    const c = nx(["checkpoint", "--image-path", img, id]);
    if (criuWorks) {
      expect(c.code).toBe(0);
      expect(JSON.parse(nx(["state", id]).stdout).status).toBe("stopped");
      nx(["delete", id]);
      expect(Bun.spawnSync([...rt.argv, "restore", "--detach", "--bundle", bundle, "--image-path", img, id], { stdout: "ignore", stderr: "inherit" }).exitCode).toBe(0);
      expect(JSON.parse(nx(["state", id]).stdout).status).toBe("running");
    } else {
      expect(c.code).toBe(ExitCode.unsupported);
      expect(c.stderr).toMatch(/^nexcage: checkpoint needs CRIU and `criu check` fails: .+; use --fs-only for a filesystem snapshot instead\n$/);
      expect(JSON.parse(nx(["state", id]).stdout).status).toBe("running"); // nothing happened
      const r = nx(["restore", "--detach", "--image-path", img, id]);
      expect(r.code).toBe(ExitCode.unsupported);
      expect(r.stderr).toContain("use --fs-only --snapshot NAME");
    }
    nx(["delete", "--force", id]);
  });

  test("--fs-only: checkpoint takes a filesystem snapshot and stops the container; restore brings it back from it", () => {
    expect(run()).toBe(0);
    expect(nx(["exec", id, "sh", "-c", "echo saved > /root/state"]).code).toBe(0);
    const c = nx(["checkpoint", "--fs-only", id]);
    expect(c.code).toBe(0);
    const name = /filesystem snapshot (\S+) of/.exec(c.stdout)?.[1] as string;
    expect(name).toMatch(/^checkpoint-\d{8}-\d{6}$/);
    expect(JSON.parse(nx(["state", id]).stdout).status).toBe("stopped");
    writeFileSync(join(dir, "rootfs/root/state"), "changed\n");
    expect(nx(["restore", "--fs-only", id]).stderr).toContain("needs --snapshot NAME");
    // the restarted container inherits restore's stdio, as it would create's: no pipes here
    const errFile = join(work, "restore.err");
    const r = Bun.spawnSync([...rt.argv, "restore", "--fs-only", "--snapshot", name, id], { stdout: "ignore", stderr: Bun.file(errFile), stdin: "ignore" });
    expect(readFileSync(errFile, "utf8")).toBe("");
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(nx(["state", id]).stdout).status).toBe("running");
    expect(nx(["exec", id, "cat", "/root/state"]).stdout).toBe("saved\n");
    expect(nx(["checkpoint", "--manage-cgroups-mode", "bogus", id]).code).toBe(ExitCode.usage);
  });
});

describe("progress on a terminal", () => {
  const rt = runtimeFor("crun");
  const dir = mkdtempSync(join(work, "prog-"));
  cpSync(ensureRootfs(), join(dir, "rootfs"), { recursive: true, verbatimSymlinks: true });
  const bundle = bundleAt(dir);
  afterAll(() => {
    rt.nx(["delete", "--force", "prog"]);
    rmSync(rt.dir, { recursive: true, force: true });
  });

  test.skipIf(!have("script"))("hashing a large tree shows a progress line on a terminal and nothing otherwise (skipped only without util-linux script)", () => {
    writeFileSync(join(dir, "rootfs/root/big"), Buffer.alloc(80 * 2 ** 20, 7)); // over the 64 MiB threshold
    expect(Bun.spawnSync([...rt.argv, "create", "--bundle", bundle, "prog"], { stdout: "ignore", stderr: "inherit" }).exitCode).toBe(0);
    expect(rt.nx(["snapshot", "create", "prog", "big"]).code).toBe(0);
    const piped = rt.nx(["snapshot", "verify", "prog", "big"]);
    expect(piped.stderr).toBe("");
    expect(piped.stdout).not.toContain("hashing");
    // under a pty (script(1)), stderr is a terminal
    const cmd = [...rt.argv, "snapshot", "verify", "prog", "big"].map((a) => `'${a}'`).join(" ");
    const tty = sh(`script -qec "${cmd}" /dev/null`);
    expect(tty.code).toBe(0);
    expect(tty.out).toMatch(/hashing: \d+% of 8\d MiB/);
    expect(tty.out).toContain("every file matches its manifest");
  });
});
