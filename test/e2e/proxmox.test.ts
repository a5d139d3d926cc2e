// proxmox-lxc and proxmox-vm on the PVE double (test/pve): what Proxmox records, VMID mapping, image
// sources, storages (dir, btrfs on a loop device, ZFS on a zfs-fuse pool) and every error path of a create,
// each checked to leave nothing behind.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ExitCode } from "../../src/core/errors.ts";
import { makeBundle, ociArchive, rootfsTar } from "../fixtures/busybox.ts";
import { BIN, hostSetup, runtimeFor } from "./helpers.ts";

// this run's own pool: zfs-fuse can keep a pool "busy" for a while after its last use
const PVEPOOL = `nxpve${process.pid}`;
const have = (cmd: string) => Bun.spawnSync(["sh", "-c", `command -v ${cmd}`]).exitCode === 0;
const sh = (cmd: string) => Bun.spawnSync(["sh", "-c", cmd], { stdout: "pipe", stderr: "pipe" });

describe.skipIf(!have("lxc-start"))("proxmox-lxc on the PVE double (skipped only where LXC is not installed)", () => {
  const rt = runtimeFor("proxmox-lxc");
  const pve = rt.pve as NonNullable<typeof rt.pve>;
  const { nx } = rt;
  const bundles: { cleanup: () => void }[] = [];
  const bundle = (opts: Parameters<typeof makeBundle>[0] = {}) => {
    const b = makeBundle({ args: ["sleep", "1000"], ...opts });
    bundles.push(b);
    return b;
  };
  const withConfig = (b: ReturnType<typeof bundle>, edit: (c: Record<string, any>) => void) => {
    edit(b.config);
    writeFileSync(join(b.dir, "config.json"), JSON.stringify(b.config));
    return b;
  };
  /** create without pipes on stdio (the container inherits them) */
  const create = (id: string, dir: string, env: Record<string, string> = {}) => {
    const err = join(rt.dir, `${id}.err`);
    const r = Bun.spawnSync([BIN, "--root", rt.root, "--config", rt.config, "create", "--bundle", dir, id], { stdout: "ignore", stderr: Bun.file(err), env: { ...process.env, ...env } });
    return { code: r.exitCode ?? -1, stderr: readFileSync(err, "utf8") };
  };
  const confs = () => readdirSync(join(pve.root, "etc/pve/nodes/pve/lxc"));
  const images = () => (existsSync(join(pve.root, "var/lib/vz/images")) ? readdirSync(join(pve.root, "var/lib/vz/images")) : []);
  const claims = () => (existsSync(join(rt.root, "proxmox/vmids")) ? readdirSync(join(rt.root, "proxmox/vmids")) : []);
  /** the whole node is as it was: no CT, no volume, no claim, no record */
  const clean = (id: string) => {
    expect(confs()).toEqual([]);
    expect(images()).toEqual([]);
    expect(claims()).toEqual([]);
    expect(existsSync(join(rt.root, "containers", id))).toBe(false);
    expect(existsSync(join(rt.root, "proxmox-lxc", id))).toBe(false);
  };

  beforeAll(() => hostSetup());
  afterAll(() => {
    for (const id of existsSync(join(rt.root, "containers")) ? readdirSync(join(rt.root, "containers")) : []) nx(["delete", "--force", id]);
    for (const b of bundles) b.cleanup();
    rmSync(rt.dir, { recursive: true, force: true });
  });

  test("an id that is a VMID: pct records hostname, memory, swap, cpulimit, cores and the nexcage id; state.json follows", () => {
    const b = withConfig(bundle(), (c) => {
      c.hostname = "web-1";
      c.linux.resources = { memory: { limit: 256 * 2 ** 20, swap: 384 * 2 ** 20 }, cpu: { quota: 150000, period: 100000, cpus: "0-1" } };
    });
    expect(create("321", b.dir).stderr).toBe("");
    const conf = readFileSync(join(pve.root, "etc/pve/nodes/pve/lxc/321.conf"), "utf8");
    for (const line of ["#nexcage container 321", "hostname: web-1", "memory: 256", "swap: 128", "cpulimit: 1.5", "cores: 2", "ostype: unmanaged", "rootfs: local:321/subvol-321-disk-0,size=0G"]) expect(conf).toContain(line);
    expect(pve.tool("pct", ["status", "321"]).stdout).toBe("status: running\n"); // created: the init runs, waiting
    expect(JSON.parse(nx(["state", "321"]).stdout).status).toBe("created");
    expect(nx(["start", "321"]).code).toBe(0);
    expect(JSON.parse(nx(["state", "321"]).stdout).status).toBe("running");
    // Proxmox's own exec reaches the same container
    expect(pve.tool("pct", ["exec", "321", "--", "hostname"]).stdout).toBe("web-1\n");
    expect(nx(["kill", "321", "KILL"]).code).toBe(0);
    for (let i = 0; i < 100 && JSON.parse(nx(["state", "321"]).stdout).status !== "stopped"; i++) Bun.sleepSync(20);
    expect(JSON.parse(nx(["state", "321"]).stdout).status).toBe("stopped");
    expect(pve.tool("pct", ["status", "321"]).stdout).toBe("status: stopped\n");
    expect(nx(["delete", "321"]).code).toBe(0);
    clean("321");
  });

  test("the org.nexcage.vmid annotation; without one, the next free VMID; a taken VMID is refused before anything is made", () => {
    const a = bundle({ annotations: { "org.nexcage.vmid": "555" } });
    expect(create("svc-a", a.dir).code).toBe(0);
    expect(confs()).toEqual(["555.conf"]);
    // taken by a nexcage container
    const r1 = create("svc-b", a.dir);
    expect(r1.code).toBe(ExitCode.exists);
    expect(r1.stderr).toContain("VMID 555 is already used by container svc-a");
    // taken by a CT nexcage does not know about
    Bun.spawnSync(["tar", "--zstd", "-C", join(pve.root, ".."), "-cf", join(pve.root, "var/lib/vz/template/cache/empty.tar.zst"), "--files-from", "/dev/null"]);
    expect(pve.tool("pct", ["create", "556", "local:vztmpl/empty.tar.zst", "--rootfs", "local:0"]).code).toBe(0);
    const r2 = create("svc-c", bundle({ annotations: { "org.nexcage.vmid": "556" } }).dir);
    expect(r2.code).toBe(ExitCode.exists);
    expect(r2.stderr).toContain("VMID 556 is already used on this node (CT 556)");
    expect(pve.tool("pct", ["destroy", "556"]).code).toBe(0);
    // next free: 100
    expect(create("svc-d", bundle().dir).code).toBe(0);
    expect(JSON.parse(readFileSync(join(rt.root, "containers/svc-d/state.json"), "utf8")).data.vmid).toBe("100");
    expect(nx(["delete", "--force", "svc-a"]).code).toBe(0);
    expect(nx(["delete", "--force", "svc-d"]).code).toBe(0);
    clean("svc-a");
    // malformed
    const r3 = create("svc-e", bundle({ annotations: { "org.nexcage.vmid": "42" } }).dir);
    expect(r3.code).toBe(ExitCode.invalidSpec);
    expect(r3.stderr).toContain("not a VMID");
  });

  test.each([
    ["template missing", { "org.nexcage.proxmox.template": "local:vztmpl/missing.tar.zst" }, ExitCode.notFound, "template local:vztmpl/missing.tar.zst does not exist"],
    ["storage missing", { "org.nexcage.proxmox.rootfs": "nosuch:4" }, ExitCode.storage, "storage 'nosuch' does not exist"],
    ["a registry reference", { "org.nexcage.proxmox.template": "ubuntu:22.04" }, ExitCode.invalidSpec, "skopeo copy docker://ubuntu:22.04 oci-archive:image.tar"],
    ["a .tar that is no OCI archive", { "org.nexcage.proxmox.template": "local:vztmpl/plain.tar" }, ExitCode.invalidSpec, "not an OCI archive"],
  ])("%s: a clear error, nothing created", (_what, annotations, code, text) => {
    writeFileSync(join(pve.root, "var/lib/vz/template/cache/plain.tar"), readFileSync(rootfsTar()));
    const r = create("bad-src", bundle({ annotations }).dir);
    expect(r.stderr).toContain(text);
    expect(r.code).toBe(code);
    clean("bad-src");
  });

  test("pct create failing after storage was allocated: the volume nexcage made is freed, nothing is left", () => {
    const r = create("midway", bundle().dir, { PVE_DOUBLE_FAIL: "pct-create-after-alloc" });
    expect(r.code).toBe(ExitCode.failure);
    expect(r.stderr).toContain("unable to create CT 100 - injected failure after allocating local:100/subvol-100-disk-0");
    clean("midway");
  });

  test("exec into a stopped container is refused", () => {
    const b = bundle({ args: ["true"] });
    expect(create("short", b.dir).code).toBe(0);
    expect(nx(["start", "short"]).code).toBe(0);
    for (let i = 0; i < 100 && JSON.parse(nx(["state", "short"]).stdout).status !== "stopped"; i++) Bun.sleepSync(20);
    const r = nx(["exec", "short", "true"]);
    expect(r.code).toBe(ExitCode.badState);
    expect(r.stderr).toContain("cannot exec in a stopped container");
    expect(nx(["delete", "short"]).code).toBe(0);
    clean("short");
  });

  test("image sources: a vztmpl volume and an OCI archive on a storage", () => {
    const cache = join(pve.root, "var/lib/vz/template/cache");
    Bun.spawnSync(["sh", "-c", `zstd -q -c ${rootfsTar()} > ${cache}/busybox.tar.zst`]);
    ociArchive(join(cache, "busybox-oci.tar"));
    for (const [id, tmpl] of [["from-vztmpl", "local:vztmpl/busybox.tar.zst"], ["from-oci", "local:vztmpl/busybox-oci.tar"]] as const) {
      const b = bundle({ args: ["sh", "-c", "test -x /bin/busybox && echo image-ok"], annotations: { "org.nexcage.proxmox.template": tmpl } });
      const out = join(rt.dir, `${id}.out`);
      const r = Bun.spawnSync([BIN, "--root", rt.root, "--config", rt.config, "run", "--bundle", b.dir, id], { stdout: Bun.file(out), stderr: "pipe" });
      expect(r.stderr.toString()).toBe("");
      expect(readFileSync(out, "utf8")).toBe("image-ok\n");
      expect(r.exitCode).toBe(0);
      clean(id);
    }
  });

  test("the pct start path (config startPath: pct): create/start/exec/delete through pct start, same OCI semantics", () => {
    const prt = runtimeFor("proxmox-lxc");
    const cfg = JSON.parse(readFileSync(prt.config, "utf8"));
    cfg.proxmox.startPath = "pct";
    writeFileSync(prt.config, JSON.stringify(cfg));
    const b = bundle();
    try {
      const r = Bun.spawnSync([BIN, "--root", prt.root, "--config", prt.config, "create", "--bundle", b.dir, "via-pct"], { stdout: "ignore", stderr: "pipe" });
      expect(r.stderr.toString()).toBe("");
      const conf = readFileSync(join(prt.pve?.root as string, "etc/pve/nodes/pve/lxc/100.conf"), "utf8");
      expect(conf).toContain("lxc.init.cmd: /dev/.nexcage/init /dev/.nexcage");
      expect(JSON.parse(prt.nx(["state", "via-pct"]).stdout).status).toBe("created");
      expect(prt.nx(["start", "via-pct"]).code).toBe(0);
      const ex = prt.nx(["exec", "via-pct", "sh", "-c", "exit 7"]);
      expect(ex.code).toBe(7);
      expect(prt.nx(["delete", "--force", "via-pct"]).code).toBe(0);
      expect(readdirSync(join(prt.pve?.root as string, "etc/pve/nodes/pve/lxc"))).toEqual([]);
      // run in the foreground: the CT's init is lxc-start's child, not ours; its status cannot reach us
      const short = bundle({ args: ["sh", "-c", "exit 3"] });
      const fg = Bun.spawnSync([BIN, "--root", prt.root, "--config", prt.config, "run", "--bundle", short.dir, "fg-pct"], { stdout: "ignore", stderr: "pipe" });
      expect(fg.exitCode).toBe(255);
      expect(fg.stderr.toString()).toContain("the exit status of fg-pct is not available to nexcage");
      expect(readdirSync(join(prt.pve?.root as string, "etc/pve/nodes/pve/lxc"))).toEqual([]);
    } finally {
      rmSync(prt.dir, { recursive: true, force: true });
    }
  });

  test("update: the cgroup and Proxmox's config both change", () => {
    const b = bundle();
    expect(create("upd", b.dir).code).toBe(0);
    expect(nx(["start", "upd"]).code).toBe(0);
    const r = nx(["update", "--resources", "-", "upd"], { stdin: JSON.stringify({ memory: { limit: 96 * 2 ** 20 } }) });
    expect(r.stderr).toBe("");
    expect(pve.tool("pct", ["config", "100"]).stdout).toContain("memory: 96\n");
    expect(nx(["delete", "--force", "upd"]).code).toBe(0);
    clean("upd");
  });

  describe("storages", () => {
    const storageCfg = () => join(pve.root, "etc/pve/storage.cfg");
    afterAll(async () => {
      sh(`umount -l ${join(rt.dir, "btrfs")} 2>/dev/null`);
      // zfs-fuse may call the pool busy for a moment after its last dataset went
      for (let i = 0; i < 30 && sh(`zpool list ${PVEPOOL}`).exitCode === 0 && sh(`timeout 10 zpool destroy -f ${PVEPOOL}`).exitCode !== 0; i++) await Bun.sleep(200);
    }, 30_000);

    test("btrfs (a loop-mounted filesystem): the root volume is a subvolume", () => {
      const img = join(rt.dir, "btrfs.img");
      const mnt = join(rt.dir, "btrfs");
      mkdirSync(mnt, { recursive: true });
      expect(sh(`truncate -s 300M ${img} && mkfs.btrfs -q ${img} && mount -o loop ${img} ${mnt}`).exitCode).toBe(0);
      appendFileSync(storageCfg(), `btrfs: tank\n\tpath ${mnt}\n\tcontent rootdir,images\n\n`);
      const b = withConfig(bundle({ annotations: { "org.nexcage.proxmox.rootfs": "tank:2" } }), (c) => (c.root.readonly = false));
      expect(create("on-btrfs", b.dir).stderr).toBe("");
      const vol = join(mnt, "images/100/subvol-100-disk-0");
      expect(sh(`btrfs subvolume show ${vol}`).exitCode).toBe(0);
      expect(readFileSync(join(pve.root, "etc/pve/nodes/pve/lxc/100.conf"), "utf8")).toContain("rootfs: tank:100/subvol-100-disk-0,size=2G");

      // nexcage snapshots of a Proxmox CT go through pct: Proxmox records them as its own
      expect(nx(["start", "on-btrfs"]).code).toBe(0);
      expect(nx(["exec", "on-btrfs", "sh", "-c", "echo before > /root/state"]).code).toBe(0);
      const made = nx(["snapshot", "create", "on-btrfs", "before", "--format", "json"]);
      expect(made.stderr).toBe("");
      expect(JSON.parse(made.stdout)).toMatchObject({ driver: "pct", name: "before" });
      expect(JSON.parse(nx(["state", "on-btrfs"]).stdout).status).toBe("running"); // thawed
      const conf = () => readFileSync(join(pve.root, "etc/pve/nodes/pve/lxc/100.conf"), "utf8");
      expect(conf()).toContain("parent: before\n");
      expect(conf()).toMatch(/\n\[before\]\n#nexcage snapshot\n[^[]*snaptime: \d+\n/);
      expect(pve.tool("pct", ["listsnapshot", "100"]).stdout).toContain("`-> before");
      expect(nx(["snapshot", "verify", "on-btrfs", "before"]).code).toBe(0);
      expect(nx(["exec", "on-btrfs", "sh", "-c", "echo after > /root/state"]).code).toBe(0);
      const back = nx(["snapshot", "restore", "on-btrfs", "before", "--force"]);
      expect(back.stderr).toBe("");
      expect(JSON.parse(nx(["state", "on-btrfs"]).stdout).status).toBe("running");
      expect(nx(["exec", "on-btrfs", "cat", "/root/state"]).stdout).toBe("before\n");
      expect(nx(["snapshot", "delete", "on-btrfs", "before"]).code).toBe(0);
      expect(conf()).not.toContain("[before]");
      expect(nx(["delete", "--force", "on-btrfs"]).code).toBe(0);
      expect(existsSync(vol)).toBe(false);
      clean("on-btrfs");
    });

    test.skipIf(!have("zfs-fuse"))("zfspool on zfs-fuse (libzfs_core cannot initialise here: the zfs CLI path): subvol-<vmid>-disk-0 with refquota (skipped only without zfs-fuse)", async () => {
      if (sh("zpool list").exitCode !== 0) {
        Bun.spawn(["zfs-fuse", "--no-daemon"], { stdio: ["ignore", "ignore", "ignore"] }).unref();
        for (let i = 0; i < 50 && sh("zpool list").exitCode !== 0; i++) await Bun.sleep(100);
      }
      const img = join(rt.dir, "zpool.img");
      
      const made = sh(`truncate -s 256M ${img} && zpool create -f -m /${PVEPOOL} ${PVEPOOL} ${img}`);
      expect({ code: made.exitCode, err: made.stderr.toString().replace(/^Defaulting to .*\n/m, "") }).toEqual({ code: 0, err: "" });
      appendFileSync(storageCfg(), `zfspool: local-zfs\n\tpool ${PVEPOOL}\n\tcontent rootdir,images\n\n`);
      const b = bundle({ annotations: { "org.nexcage.proxmox.rootfs": "local-zfs:1" } });
      expect(create("on-zfs", b.dir).stderr).toBe("");
      expect(sh(`zfs get -H -o value refquota ${PVEPOOL}/subvol-100-disk-0`).stdout.toString().trim()).toBe("1G");
      expect(readFileSync(join(pve.root, "etc/pve/nodes/pve/lxc/100.conf"), "utf8")).toContain("rootfs: local-zfs:subvol-100-disk-0,size=1G");
      expect(nx(["start", "on-zfs"]).code).toBe(0);
      expect(nx(["exec", "on-zfs", "test", "-x", "/bin/busybox"]).code).toBe(0);
      expect(nx(["delete", "--force", "on-zfs"]).code).toBe(0);
      expect(sh(`zfs list -H ${PVEPOOL}/subvol-100-disk-0`).exitCode).not.toBe(0);
      clean("on-zfs");
    });
  });
});

describe.skipIf(!have("qemu-system-x86_64"))("proxmox-vm on the PVE double: real QEMU (skipped only where QEMU is not installed)", () => {
  const rt = runtimeFor("proxmox-vm");
  const pve = rt.pve as NonNullable<typeof rt.pve>;
  const { nx } = rt;
  const disk = join(rt.dir, "disk.img");
  const bundles: { cleanup: () => void }[] = [];
  const vmBundle = (annotations: Record<string, string> = { "org.nexcage.proxmox.disk": disk }, edit?: (c: Record<string, any>) => void) => {
    const b = makeBundle({ args: ["true"], annotations });
    if (edit) {
      edit(b.config);
      writeFileSync(join(b.dir, "config.json"), JSON.stringify(b.config));
    }
    bundles.push(b);
    return b;
  };
  const state = (id: string) => JSON.parse(nx(["state", id]).stdout);
  const vmConfs = () => readdirSync(join(pve.root, "etc/pve/nodes/pve/qemu-server"));
  const clean = (id: string) => {
    expect(vmConfs()).toEqual([]);
    expect(existsSync(join(pve.root, "var/lib/vz/images")) ? readdirSync(join(pve.root, "var/lib/vz/images")) : []).toEqual([]);
    expect(existsSync(join(rt.root, "proxmox/vmids")) ? readdirSync(join(rt.root, "proxmox/vmids")) : []).toEqual([]);
    expect(existsSync(join(rt.root, "containers", id))).toBe(false);
  };

  beforeAll(() => {
    writeFileSync(disk, Buffer.alloc(0));
    sh(`truncate -s 64M ${disk}`);
  });
  afterAll(() => {
    for (const id of existsSync(join(rt.root, "containers")) ? readdirSync(join(rt.root, "containers")) : []) nx(["delete", "--force", id]);
    for (const b of bundles) b.cleanup();
    rmSync(rt.dir, { recursive: true, force: true });
  });

  test("lifecycle: created (defined, pid 0) → running (QEMU's pid) → paused → running → stopped → deleted; exec through the guest agent", () => {
    const b = vmBundle(undefined, (c) => {
      c.linux.resources = { memory: { limit: 192 * 2 ** 20 }, cpu: { cpus: "0-1" } };
    });
    const c = nx(["create", "--bundle", b.dir, "vm1"]);
    expect(c.stderr).toBe("");
    expect(state("vm1")).toMatchObject({ status: "created", pid: 0 });
    const conf = readFileSync(join(pve.root, "etc/pve/nodes/pve/qemu-server/100.conf"), "utf8");
    for (const l of ["#nexcage container vm1", "agent: 1", "cores: 2", "memory: 192", "scsi0: local:100/vm-100-disk-0.raw,size=64M"]) expect(conf).toContain(l);
    expect(pve.tool("qm", ["status", "100"]).stdout).toBe("status: stopped\n");

    expect(nx(["start", "vm1"]).code).toBe(0);
    const s = state("vm1");
    expect(s.status).toBe("running");
    expect(readFileSync(`/proc/${s.pid}/cmdline`, "utf8")).toContain("qemu-system-x86_64");
    expect(pve.tool("qm", ["list"]).stdout).toContain(`       100 nexcage-test         running    192                0.06 ${s.pid}`);

    const ex = nx(["exec", "vm1", "sh", "-c", "echo from-guest; echo oops >&2; exit 5"]);
    expect(ex).toMatchObject({ code: 5, stdout: "from-guest\n", stderr: "oops\n" });
    const det = nx(["exec", "--detach", "vm1", "true"]);
    expect(det.code).toBe(ExitCode.unsupported);

    expect(nx(["pause", "vm1"]).code).toBe(0);
    expect(state("vm1").status).toBe("paused");
    expect(pve.tool("qm", ["status", "100"]).stdout).toBe("status: paused\n");
    expect(nx(["resume", "vm1"]).code).toBe(0);
    expect(state("vm1").status).toBe("running");

    const hup = nx(["kill", "vm1", "HUP"]);
    expect(hup.code).toBe(ExitCode.unsupported);
    expect(hup.stderr).toContain("use TERM for a shutdown or KILL to power off");
    expect(nx(["kill", "vm1", "KILL"]).code).toBe(0);
    expect(state("vm1")).toMatchObject({ status: "stopped", pid: 0 });
    const dead = nx(["exec", "vm1", "true"]);
    expect(dead.code).toBe(ExitCode.badState);
    expect(nx(["delete", "vm1"]).code).toBe(0);
    clean("vm1");
  });

  test("errors, each leaving nothing: no disk annotation, a missing image, a VMID a CT holds, qm create failing after allocating", () => {
    const noDisk = nx(["create", "--bundle", vmBundle({}).dir, "vm2"]);
    expect(noDisk.code).toBe(ExitCode.invalidSpec);
    expect(noDisk.stderr).toContain("org.nexcage.proxmox.disk");
    clean("vm2");

    const missing = nx(["create", "--bundle", vmBundle({ "org.nexcage.proxmox.disk": "/no/such.img" }).dir, "vm3"]);
    expect(missing.code).toBe(ExitCode.notFound);
    expect(missing.stderr).toContain("unable to create VM 100 - import source '/no/such.img' does not exist");
    clean("vm3");

    Bun.spawnSync(["tar", "--zstd", "-cf", join(pve.root, "var/lib/vz/template/cache/empty.tar.zst"), "--files-from", "/dev/null"]);
    expect(pve.tool("pct", ["create", "150", "local:vztmpl/empty.tar.zst", "--rootfs", "local:0"]).code).toBe(0);
    const taken = nx(["create", "--bundle", vmBundle({ "org.nexcage.proxmox.disk": disk, "org.nexcage.vmid": "150" }).dir, "vm4"]);
    expect(taken.code).toBe(ExitCode.exists);
    expect(taken.stderr).toContain("VMID 150 is already used on this node (CT 150)");
    expect(pve.tool("pct", ["destroy", "150"]).code).toBe(0);

    const mid = nx(["create", "--bundle", vmBundle().dir, "vm5"], { env: { PVE_DOUBLE_FAIL: "qm-create-after-alloc" } });
    expect(mid.code).toBe(ExitCode.failure);
    expect(mid.stderr).toContain("unable to create VM 100 - injected failure after allocating local:100/vm-100-disk-0.raw");
    clean("vm5");
  });
});
