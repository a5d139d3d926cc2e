// The PVE double itself against ../shared/PROXMOX.md: byte-exact outputs, error strings, exit codes, VMID
// rules, the pct-vs-qm stop asymmetry and snapshot sections, with real LXC and QEMU underneath. The
// runtime's Proxmox tests are only as good as this double, so it is held to the documented behaviour.
import { afterAll, describe, expect, test } from "bun:test";
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rootfsTar } from "../fixtures/busybox.ts";
import { pveDouble } from "./helpers.ts";

const have = (cmd: string) => Bun.spawnSync(["sh", "-c", `command -v ${cmd}`]).exitCode === 0;

describe.skipIf(!have("lxc-start") || !have("qemu-system-x86_64"))("PVE double (skipped only without LXC and QEMU)", () => {
  const dir = mkdtempSync(join(tmpdir(), "nexcage-pve-double-"));
  const { root, tool } = pveDouble(dir);
  const pct = (...a: string[]) => tool("pct", a);
  const qm = (...a: string[]) => tool("qm", a);
  const conf = (vmid: string) => readFileSync(join(root, "etc/pve/nodes/pve/lxc", `${vmid}.conf`), "utf8");
  Bun.spawnSync(["sh", "-c", `zstd -q -c ${rootfsTar()} > ${join(root, "var/lib/vz/template/cache/busybox.tar.zst")}`]);
  writeFileSync(join(dir, "disk.img"), "");

  afterAll(() => {
    pct("stop", "100");
    qm("stop", "200");
    Bun.spawnSync(["sh", "-c", `umount ${join(dir, "btrfs")} 2>/dev/null`]);
    rmSync(dir, { recursive: true, force: true });
  });

  test("empty node: pct list and qm list print nothing; nextid is 100", () => {
    expect(pct("list")).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(qm("list")).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(tool("pvesh", ["get", "/cluster/nextid"]).stdout).toBe("100\n");
  });

  test("VMID rules and parameter errors: 400 with the parameter named, exit 255", () => {
    for (const bad of ["99", "0100", "1000000000", "abc"]) {
      expect(pct("create", bad, "local:vztmpl/busybox.tar.zst")).toEqual({ code: 255, stdout: "", stderr: "400 Parameter verification failed.\nvmid: invalid format - value does not look like a valid VM ID\n" });
    }
    expect(pct("create", "100", "local:vztmpl/busybox.tar.zst", "--memory", "lots").stderr).toBe("400 Parameter verification failed.\nmemory: type check ('integer') failed - got 'lots'\n");
  });

  test("pct create → the config, sorted, description first; list/status formats; duplicates refused", () => {
    expect(pct("create", "100", "local:vztmpl/busybox.tar.zst", "--hostname", "web", "--memory", "256", "--swap", "0", "--rootfs", "local:0", "--description", "hello").code).toBe(0);
    expect(conf("100")).toBe("#hello\narch: amd64\nhostname: web\nmemory: 256\nostype: unmanaged\nrootfs: local:100/subvol-100-disk-0,size=0G\nswap: 0\n");
    expect(pct("create", "100", "local:vztmpl/busybox.tar.zst")).toMatchObject({ code: 255, stderr: "CT 100 already exists on node 'pve'\n" });
    expect(pct("create", "101", "local:vztmpl/nope.tar.zst")).toMatchObject({ code: 255, stderr: "unable to create CT 101 - volume 'local:vztmpl/nope.tar.zst' does not exist\n" });
    expect(pct("list").stdout).toBe("VMID       Status     Lock         Name                \n100        stopped                 web                 \n");
    expect(pct("status", "100").stdout).toBe("status: stopped\n");
    expect(pct("status", "104")).toMatchObject({ code: 255, stderr: "Configuration file 'nodes/pve/lxc/104.conf' does not exist\n" });
    expect(tool("pvesh", ["get", "/cluster/nextid"]).stdout).toBe("101\n");
  });

  test("pct start/exec/stop on a real LXC container; pct's stop of a stopped CT fails, qm's succeeds", () => {
    appendFileSync(join(root, "etc/pve/nodes/pve/lxc/100.conf"), "lxc.init.cmd: /bin/sleep 1000\n");
    expect(pct("exec", "100", "--", "true")).toMatchObject({ code: 255, stderr: "container '100' not running!\n" });
    expect(pct("start", "100").code).toBe(0);
    expect(pct("start", "100")).toMatchObject({ code: 255, stderr: "CT 100 already running\n" });
    expect(pct("status", "100").stdout).toBe("status: running\n");
    const ex = pct("exec", "100", "--", "sh", "-c", "hostname; exit 3");
    expect(ex).toMatchObject({ code: 3, stdout: "web\n" });
    expect(pct("destroy", "100")).toMatchObject({ code: 255, stderr: "unable to destroy CT 100 - container is running\n" });
    expect(pct("stop", "100").code).toBe(0);
    expect(pct("stop", "100")).toMatchObject({ code: 255, stderr: "CT 100 not running\n" });
  });

  test("qm: create, list header, start (real QEMU, QMP status), guest exec JSON exactly as Proxmox prints it, silent stop of a stopped VM", () => {
    Bun.spawnSync(["truncate", "-s", "1G", join(dir, "disk.img")]);
    expect(qm("create", "200", "--name", "vm", "--memory", "128", "--scsi0", `local:0,import-from=${join(dir, "disk.img")}`, "--agent", "1").code).toBe(0);
    expect(qm("create", "100", "--name", "x").stderr).toBe("CT 100 already exists on node 'pve'\n"); // one VMID namespace
    expect(qm("start", "200").code).toBe(0);
    expect(qm("start", "200")).toMatchObject({ code: 255, stderr: "VM 200 already running\n" });
    expect(qm("status", "200").stdout).toBe("status: running\n");
    const list = qm("list").stdout.split("\n");
    expect(list[0]).toBe("      VMID NAME                 STATUS     MEM(MB)    BOOTDISK(GB) PID       ");
    expect(list[1]).toMatch(/^       200 vm                   running    128                1\.00 \d+ +$/);
    expect(qm("guest", "exec", "200", "--", "sh", "-c", "echo out; exit 2")).toEqual({ code: 0, stdout: '{\n   "exitcode" : 2,\n   "exited" : 1,\n   "out-data" : "out\\n"\n}\n', stderr: "" });
    expect(qm("suspend", "200").code).toBe(0);
    expect(qm("status", "200").stdout).toBe("status: paused\n");
    expect(qm("resume", "200").code).toBe(0);
    expect(qm("destroy", "200")).toMatchObject({ code: 255, stderr: "VM 200 is running - destroy failed\n" });
    expect(qm("stop", "200").code).toBe(0);
    expect(qm("stop", "200")).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(qm("guest", "exec", "200", "--", "true")).toMatchObject({ code: 255, stderr: "VM 200 is not running\n" });
    expect(qm("destroy", "200").code).toBe(0);
  });

  test("snapshots: [name] sections holding a copy of the config with snaptime, parent in the main section; dir storages cannot", () => {
    expect(pct("snapshot", "100", "first")).toMatchObject({ code: 255, stderr: "snapshot feature is not available\n" });
    const img = join(dir, "btrfs.img");
    const mnt = join(dir, "btrfs");
    mkdirSync(mnt);
    expect(Bun.spawnSync(["sh", "-c", `truncate -s 200M ${img} && mkfs.btrfs -q ${img} && mount -o loop ${img} ${mnt}`]).exitCode).toBe(0);
    appendFileSync(join(root, "etc/pve/storage.cfg"), `btrfs: tank\n\tpath ${mnt}\n\tcontent rootdir\n\n`);
    expect(pct("create", "300", "local:vztmpl/busybox.tar.zst", "--rootfs", "tank:1", "--hostname", "snappy").code).toBe(0);
    expect(pct("snapshot", "300", "1bad")).toMatchObject({ code: 255, stderr: "400 Parameter verification failed.\nsnapname: invalid format - invalid configuration ID\n" });
    expect(pct("snapshot", "300", "first").code).toBe(0);
    expect(pct("snapshot", "300", "first")).toMatchObject({ code: 255, stderr: "snapshot name 'first' already used\n" });
    expect(pct("set", "300", "--memory", "1024").code).toBe(0);
    expect(pct("snapshot", "300", "second").code).toBe(0);
    const c = conf("300");
    expect(c).toMatch(/^arch: amd64\nhostname: snappy\nmemory: 1024\nostype: unmanaged\nparent: second\nrootfs: tank:300\/subvol-300-disk-0,size=1G\nswap: 512\n\n\[first\]\narch: amd64\nhostname: snappy\nmemory: 512\nostype: unmanaged\nrootfs: tank:300\/subvol-300-disk-0,size=1G\nsnaptime: \d+\nswap: 512\n\n\[second\]\narch: amd64\nhostname: snappy\nmemory: 1024\nostype: unmanaged\nparent: first\nrootfs: tank:300\/subvol-300-disk-0,size=1G\nsnaptime: \d+\nswap: 512\n$/);
    expect(pct("rollback", "300", "first").code).toBe(0);
    expect(conf("300")).toContain("memory: 512\nostype: unmanaged\nparent: first\n");
    expect(pct("delsnapshot", "300", "first").code).toBe(0);
    expect(conf("300")).not.toContain("[first]");
    expect(pct("destroy", "300").code).toBe(0);
    expect(pct("destroy", "100").code).toBe(0);
    expect(pct("list").stdout).toBe("");
  });
});
