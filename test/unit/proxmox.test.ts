// The Proxmox backends' pure parts: OCI → pct/qm options, image source classification, VMID requests,
// error categories from Proxmox's messages, and qm output decoding.
import { describe, expect, test } from "bun:test";
import { classifyImage, pctCreateOptions, rootfsTarget } from "../../src/backends/proxmox-lxc/translate.ts";
import { decodeGuestExec, qmCreateOptions, qmListPid, vmName, vmStatus } from "../../src/backends/proxmox-vm/translate.ts";
import { parseSpec, type Spec } from "../../src/oci/spec.ts";
import { classify } from "../../src/proxmox/cli.ts";
import { cpusetCount } from "../../src/proxmox/resources.ts";
import { requestedVmid } from "../../src/proxmox/vmid.ts";
import { expectError } from "./expect-error.ts";

function spec(extra: Record<string, unknown> = {}, resources?: Record<string, unknown>): Spec {
  return parseSpec({ ociVersion: "1.0.2", process: { user: { uid: 0, gid: 0 }, args: ["sh"], cwd: "/" }, root: { path: "rootfs" }, linux: { ...(resources ? { resources } : {}) }, ...extra });
}
const opts = (s: Spec) => pctCreateOptions({ id: "web", spec: s, rootVolid: "local-zfs:subvol-100-disk-0", sizeGiB: 8 });
const asMap = (o: string[]) => Object.fromEntries(o.flatMap((v, i) => (i % 2 === 0 ? [[v.slice(2), o[i + 1]]] : [])));

describe("OCI → pct create", () => {
  test("hostname, memory and swap in MiB, cpulimit from quota/period, cores from cpus, cpuunits from shares, rootfs with size", () => {
    const m = asMap(opts(spec({ hostname: "web-1" }, { memory: { limit: 512 * 2 ** 20, swap: 768 * 2 ** 20 }, cpu: { quota: 50000, period: 100000, cpus: "0-2,5", shares: 2048 } })));
    expect(m).toEqual({
      hostname: "web-1",
      memory: "512",
      swap: "256",
      cpulimit: "0.5",
      cores: "4",
      cpuunits: "2048",
      rootfs: "local-zfs:subvol-100-disk-0,size=8G",
      ostype: "unmanaged",
      description: "nexcage container web",
    });
  });

  test("bind mounts of host directories become mpN; /dev, /proc, /sys, /run and non-binds do not", () => {
    const o = opts(spec({ mounts: [
      { destination: "/data", type: "bind", source: "/srv/data", options: ["rbind", "ro"] },
      { destination: "/logs", source: "/var/log/app", options: ["bind"] },
      { destination: "/dev/shm", type: "bind", source: "/dev/shm", options: ["bind"] },
      { destination: "/tmp", type: "tmpfs", source: "tmpfs" },
    ] }));
    expect(asMap(o)).toMatchObject({ mp0: "/srv/data,mp=/data,ro=1", mp1: "/var/log/app,mp=/logs" });
    expect(o.join(" ")).not.toContain("/dev/shm");
  });

  test("network, features and unprivileged from annotations", () => {
    const m = asMap(opts(spec({ annotations: { "org.nexcage.proxmox.net0": "name=eth0,bridge=vmbr0,ip=dhcp", "org.nexcage.proxmox.features": "nesting=1", "org.nexcage.proxmox.unprivileged": "1" } })));
    expect(m).toMatchObject({ net0: "name=eth0,bridge=vmbr0,ip=dhcp", features: "nesting=1", unprivileged: "1" });
  });

  test.each([
    ["a hostname Proxmox rejects", spec({ hostname: "bad_name!" }), "hostname"],
    ["memory below 16 MiB", spec({}, { memory: { limit: 8 * 2 ** 20 } }), "linux.resources.memory.limit"],
    ["unlimited swap", spec({}, { memory: { limit: 64 * 2 ** 20, swap: -1 } }), "linux.resources.memory.swap"],
    ["swap without a limit", spec({}, { memory: { swap: 64 * 2 ** 20 } }), "linux.resources.memory.swap"],
    ["a malformed cpu list", spec({}, { cpu: { cpus: "3-1" } }), "linux.resources.cpu.cpus"],
    ["unprivileged not 0/1", spec({ annotations: { "org.nexcage.proxmox.unprivileged": "yes" } }), "org.nexcage.proxmox.unprivileged"],
    ["a comma in a mount path", spec({ mounts: [{ destination: "/a,b", type: "bind", source: "/srv" }] }), "mounts[0]"],
  ])("refused: %s", (_w, s, field) => {
    expectError(() => opts(s), "invalidSpec", field);
  });

  test("rootfs target: annotation STORAGE:GiB or the configured default", () => {
    expect(rootfsTarget({}, "local", 4)).toEqual({ storage: "local", sizeGiB: 4 });
    expect(rootfsTarget({ "org.nexcage.proxmox.rootfs": "local-zfs:16" }, "local", 4)).toEqual({ storage: "local-zfs", sizeGiB: 16 });
    expectError(() => rootfsTarget({ "org.nexcage.proxmox.rootfs": "16G" }, "local", 4), "invalidSpec", "STORAGE:GiB");
  });

  test("cpusetCount", () => {
    expect(cpusetCount("0")).toBe(1);
    expect(cpusetCount("0-3,6,8-9")).toBe(7);
  });
});

describe("image sources, classified strictly", () => {
  const t = (v?: string) => classifyImage(v === undefined ? {} : { "org.nexcage.proxmox.template": v });
  test("bundle, vztmpl, OCI archive", () => {
    expect(t()).toEqual({ kind: "bundle" });
    expect(t("local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst")).toEqual({ kind: "vztmpl", volid: "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst" });
    expect(t("local:vztmpl/alpine.tar.xz").kind).toBe("vztmpl");
    expect(t("cephfs:vztmpl/app-oci.tar")).toEqual({ kind: "oci-archive", volid: "cephfs:vztmpl/app-oci.tar" });
  });
  test.each(["ubuntu:22.04", "docker.io/library/nginx:1.27", "ghcr.io/org/app@sha256:" + "a".repeat(64), "alpine"])("a registry reference is an error that says what to do: %s", (ref) => {
    const e = expectError(() => t(ref), "invalidSpec", "registry image reference", "skopeo copy");
    expect(e.message).toContain(`docker://${ref}`);
  });
  test("other shapes are refused", () => {
    expectError(() => t("local:vztmpl/x.zip"), "invalidSpec", "a template is a .tar.gz");
    expectError(() => t("/abs/path.tar.zst"), "invalidSpec", "not a volume");
  });
});

describe("VMID requests", () => {
  test("the id itself, the annotation, or none", () => {
    expect(requestedVmid("100", {})).toBe("100");
    expect(requestedVmid("web", { "org.nexcage.vmid": "4242" })).toBe("4242");
    expect(requestedVmid("web", {})).toBeUndefined();
    expect(requestedVmid("99", {})).toBeUndefined(); // not a VMID: below 100
  });
  test("malformed or contradicting", () => {
    expectError(() => requestedVmid("web", { "org.nexcage.vmid": "99" }), "invalidSpec", "not a VMID");
    expectError(() => requestedVmid("web", { "org.nexcage.vmid": "01234" }), "invalidSpec", "not a VMID");
    expectError(() => requestedVmid("100", { "org.nexcage.vmid": "200" }), "invalidSpec", "is a VMID but");
  });
});

describe("Proxmox messages → categories", () => {
  test.each([
    ["CT 100 already exists on node 'pve'", "exists"],
    ["400 Parameter verification failed.\nmemory: type check ('integer') failed - got 'x'", "invalidSpec"],
    ["CT 100 is locked (backup)", "busy"],
    ["unable to create CT 100 - storage 'nosuch' does not exist", "storage"],
    ["unable to create CT 100 - zfs error: cannot create 'rpool/data/subvol-100-disk-0': out of space", "storage"],
    ["Configuration file 'nodes/pve/lxc/100.conf' does not exist", "notFound"],
    ["unable to create CT 100 - volume 'local:vztmpl/x.tar.zst' does not exist", "notFound"],
    ["CT 100 already running", "badState"],
    ["unable to destroy CT 100 - container is running", "badState"],
    ["something else entirely", "failure"],
  ])("%s → %s", (msg, code) => {
    expect(classify(msg)).toBe(code as never);
  });
});

describe("OCI → qm create, and qm's outputs", () => {
  const vm = (annotations: Record<string, string>, resources?: Record<string, unknown>) => qmCreateOptions({ id: "db-1", spec: spec({ annotations }, resources), storage: "local" });
  test("disk image imported from the annotation, memory, cores, agent", () => {
    expect(asMap(vm({ "org.nexcage.proxmox.disk": "/images/db.raw" }, { memory: { limit: 2 ** 30 }, cpu: { quota: 250000, period: 100000 } }))).toEqual({
      name: "db-1",
      memory: "1024",
      cores: "3",
      scsi0: "local:0,import-from=/images/db.raw",
      agent: "1",
      ostype: "l26",
      description: "nexcage container db-1",
    });
  });
  test("no disk, or an unusable one, is refused", () => {
    expectError(() => vm({}), "invalidSpec", "org.nexcage.proxmox.disk");
    expectError(() => vm({ "org.nexcage.proxmox.disk": "relative.img" }), "invalidSpec", "neither an absolute path nor a volume");
  });
  test("names", () => {
    expect(vmName("My_App.v2")).toBe("my-app.v2");
    expect(vmName("__")).toBe("vm");
  });
  test("qm status values", () => {
    expect(vmStatus("status: running\n")).toBe("running");
    expect(vmStatus("status: paused\n")).toBe("paused");
    expect(vmStatus("status: suspended\n")).toBe("paused");
    expect(vmStatus("status: stopped\n")).toBe("stopped");
  });
  test("qm list PID column", () => {
    const out = "      VMID NAME                 STATUS     MEM(MB)    BOOTDISK(GB) PID       \n       100 db-1                 running    1024              32.00 4242      \n       101 other                stopped    512                8.00 0         \n";
    expect(qmListPid(out, "100")).toBe(4242);
    expect(qmListPid(out, "101")).toBe(0);
    expect(qmListPid(out, "102")).toBe(0);
  });
  test("qm guest exec JSON", () => {
    expect(decodeGuestExec('{\n   "exitcode" : 3,\n   "exited" : 1,\n   "out-data" : "hi\\n"\n}\n')).toEqual({ exitcode: 3, out: "hi\n", err: "" });
    expectError(() => decodeGuestExec('{\n   "exited" : 0\n}\n'), "timeout", "did not finish");
    expectError(() => decodeGuestExec("QEMU guest agent is not running"), "failure", "no JSON");
  });
});
