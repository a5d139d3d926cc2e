// src/backends/lxc/translate.ts: the OCI field → LXC key table, refusals by field name, seccomp policy.
import { describe, expect, test } from "bun:test";
import { cgroupDir, resourceKeys, seccompPolicy, sharesToWeight, translate, type TranslateInput } from "../../src/backends/lxc/translate.ts";
import { parseSpec, type Spec } from "../../src/oci/spec.ts";
import { expectError } from "./expect-error.ts";

const V1 = { v1: new Set(["memory", "cpu", "cpuset", "pids", "devices", "freezer"]), v2: new Set<string>() };
const V2 = { v1: new Set<string>(), v2: new Set(["memory", "cpu", "cpuset", "pids", "devices"]) };

function spec(extra: Record<string, unknown> = {}, linux: Record<string, unknown> = {}, proc: Record<string, unknown> = {}): Spec {
  return parseSpec({
    ociVersion: "1.0.2",
    process: { user: { uid: 0, gid: 0 }, args: ["sh"], cwd: "/", env: ["PATH=/bin"], ...proc },
    root: { path: "rootfs" },
    mounts: [],
    linux: { namespaces: [{ type: "mount" }, { type: "pid" }, { type: "uts" }, { type: "ipc" }, { type: "network" }], ...linux },
    ...extra,
  });
}
function tr(s: Spec, over: Partial<TranslateInput> = {}) {
  return translate({ id: "c1", spec: s, rootfs: "/b/rootfs", runDir: "/run/nexcage/lxc/c1", cgroups: V1, isDir: (p) => !p.includes("file"), hostDevice: () => undefined, ...over });
}
const keys = (s: Spec, over: Partial<TranslateInput> = {}) => tr(s, over).config;
const refused = (s: () => unknown, field: string) => expectError(s, "invalidSpec", field);

describe("lxc translation", () => {
  test("the base: rootfs never managed by lxc, init from the run dir, console none, autodev", () => {
    const c = keys(spec({ root: { path: "rootfs", readonly: true } }));
    expect(c).toContain("lxc.rootfs.path = dir:/b/rootfs");
    expect(c).toContain("lxc.rootfs.managed = 0");
    expect(c).toContain("lxc.rootfs.options = ro");
    expect(c).toContain("lxc.init.cmd = /dev/.nexcage/init /dev/.nexcage");
    expect(c).toContain("lxc.mount.entry = /run/nexcage/lxc/c1 dev/.nexcage none bind,ro,create=dir 0 0");
    expect(c).toContain("lxc.console.path = none");
    expect(c).toContain("lxc.autodev = 1");
    expect(c).toContain("lxc.namespace.keep = cgroup user"); // absent from the spec → the host's
    expect(c).toContain("lxc.uts.name = c1");
    expect(c).toContain("lxc.cap.keep = none"); // no capabilities given → none
  });

  test("process: user, groups, no_new_privs, oom score, rlimits, capabilities, apparmor", () => {
    const c = keys(
      spec({}, {}, {
        user: { uid: 1000, gid: 100, additionalGids: [10, 20] },
        noNewPrivileges: true,
        oomScoreAdj: 100,
        rlimits: [{ type: "RLIMIT_NOFILE", soft: 1024, hard: 4096 }],
        capabilities: { bounding: ["CAP_KILL", "CAP_CHOWN"] },
        apparmorProfile: "nexcage-default",
      }),
    );
    for (const k of ["lxc.init.uid = 1000", "lxc.init.gid = 100", "lxc.init.groups = 10,20", "lxc.no_new_privs = 1", "lxc.proc.oom_score_adj = 100", "lxc.prlimit.nofile = 1024:4096", "lxc.cap.keep = chown kill", "lxc.apparmor.profile = nexcage-default"]) {
      expect(c).toContain(k);
    }
  });

  test("mounts: proc/sys/cgroup auto, /dev and /dev/pts by lxc, binds with create=dir|file, others as entries", () => {
    const c = keys(
      spec({
        mounts: [
          { destination: "/proc", type: "proc", source: "proc" },
          { destination: "/sys", type: "sysfs", source: "sysfs", options: ["ro"] },
          { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["ro"] },
          { destination: "/dev", type: "tmpfs", source: "tmpfs" },
          { destination: "/dev/pts", type: "devpts", source: "devpts" },
          { destination: "/data dir", type: "bind", source: "/srv/data", options: ["rbind", "ro"] },
          { destination: "/etc/hosts", type: "bind", source: "/srv/hosts-file", options: ["bind"] },
          { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["size=64m"] },
        ],
      }),
    );
    expect(c).toContain("lxc.mount.auto = proc:rw sys:ro cgroup:ro");
    expect(c).toContain("lxc.pty.max = 1024");
    expect(c).toContain("lxc.mount.entry = /srv/data data\\040dir none rbind,ro,create=dir 0 0");
    expect(c).toContain("lxc.mount.entry = /srv/hosts-file etc/hosts none bind,create=file 0 0");
    expect(c).toContain("lxc.mount.entry = tmpfs tmp tmpfs size=64m,create=dir 0 0");
    expect(c.some((l) => l.includes(" dev tmpfs"))).toBe(false);
  });

  test("sysctl, masked and read-only paths go to the mount hook, in that order", () => {
    const t = tr(spec({}, { sysctl: { "net.ipv4.ip_forward": "1" }, maskedPaths: ["/proc/kcore"], readonlyPaths: ["/proc/sys"] }));
    expect(t.paths).toEqual(["s /proc/sys/net/ipv4/ip_forward 1", "m /proc/kcore", "r /proc/sys"]);
    expect(t.config).toContain("lxc.hook.mount = /run/nexcage/lxc/c1/init --mount-hook /run/nexcage/lxc/c1");
    refused(() => tr(spec({}, { sysctl: { "../../etc/x": "1" } })), "linux.sysctl");
  });

  test("namespaces: a path is joined by the monitor and kept; user namespace maps ids", () => {
    const t = tr(spec({}, { namespaces: [{ type: "mount" }, { type: "pid" }, { type: "network", path: "/run/netns/a" }, { type: "user" }], uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }] }));
    expect(t.joinNamespaces).toEqual(["net=/run/netns/a"]);
    expect(t.config).toContain("lxc.namespace.keep = net ipc uts cgroup");
    expect(t.config).toContain("lxc.idmap = u 0 100000 65536");
    expect(t.config).toContain("lxc.idmap = g 0 100000 65536");
  });

  test("cgroup v1 and v2 keys for memory, cpu and pids", () => {
    const r = { memory: { limit: 256 << 20, reservation: 128 << 20, swap: 512 << 20 }, cpu: { shares: 1024, quota: 50000, period: 100000, cpus: "0" }, pids: { limit: 64 } };
    expect(resourceKeys(r, V1)).toEqual([
      ["lxc.cgroup.memory.limit_in_bytes", 268435456],
      ["lxc.cgroup.memory.soft_limit_in_bytes", 134217728],
      ["lxc.cgroup.memory.memsw.limit_in_bytes", 536870912],
      ["lxc.cgroup.cpu.shares", 1024],
      ["lxc.cgroup.cpu.cfs_quota_us", 50000],
      ["lxc.cgroup.cpu.cfs_period_us", 100000],
      ["lxc.cgroup.cpuset.cpus", "0"],
      ["lxc.cgroup.pids.max", 64],
    ]);
    expect(resourceKeys(r, V2)).toEqual([
      ["lxc.cgroup2.memory.max", 268435456],
      ["lxc.cgroup2.memory.low", 134217728],
      ["lxc.cgroup2.memory.swap.max", 268435456],
      ["lxc.cgroup2.cpu.weight", sharesToWeight(1024)],
      ["lxc.cgroup2.cpu.max", "50000 100000"],
      ["lxc.cgroup2.cpuset.cpus", "0"],
      ["lxc.cgroup2.pids.max", 64],
    ]);
    expect(sharesToWeight(2)).toBe(1);
    expect(sharesToWeight(262144)).toBe(10000);
  });

  test("device rules: the spec's, then runc's defaults; host nodes bound for linux.devices", () => {
    const c = keys(spec({}, { resources: { devices: [{ allow: false, access: "rwm" }] }, devices: [{ type: "c", path: "/dev/fuse", major: 10, minor: 229 }] }), {
      hostDevice: () => ({ type: "c", major: 10, minor: 229 }),
    });
    expect(c).toContain("lxc.cgroup.devices.deny = a *:* rwm");
    expect(c).toContain("lxc.cgroup.devices.allow = c 1:3 rwm");
    expect(c).toContain("lxc.mount.entry = /dev/fuse dev/fuse none bind,create=file 0 0");
    refused(() => keys(spec({}, { devices: [{ type: "c", path: "/dev/fuse", major: 10, minor: 229 }] })), "linux.devices[0]");
  });

  test("cgroupsPath: cgroupfs paths and systemd slice:prefix:name", () => {
    expect(cgroupDir("/libpod_parent/libpod-abc")).toBe("libpod_parent/libpod-abc");
    expect(cgroupDir("system.slice:libpod:abc")).toBe("system.slice/libpod-abc.scope");
    expect(keys(spec({}, { cgroupsPath: "/a/b" }))).toContain("lxc.cgroup.dir.container = a/b");
  });

  test.each([
    ["no mount namespace", () => spec({}, { namespaces: [{ type: "pid" }] }), "linux.namespaces"],
    ["joining a mount namespace", () => spec({}, { namespaces: [{ type: "mount", path: "/proc/1/ns/mnt" }] }), "linux.namespaces[mount].path"],
    ["time namespace", () => spec({}, { namespaces: [{ type: "mount" }, { type: "time" }] }), "linux.namespaces[time]"],
    ["hostname without uts", () => spec({ hostname: "x" }, { namespaces: [{ type: "mount" }] }), "hostname"],
    ["domainname", () => spec({ domainname: "example" }), "domainname"],
    ["selinux label", () => spec({}, {}, { selinuxLabel: "system_u:system_r:container_t" }), "process.selinuxLabel"],
    ["mount label", () => spec({}, { mountLabel: "x" }), "linux.mountLabel"],
    ["ambient caps for non-root", () => spec({}, {}, { user: { uid: 1, gid: 1 }, capabilities: { bounding: ["CAP_KILL"], ambient: ["CAP_KILL"] } }), "process.capabilities.ambient"],
    ["effective ≠ bounding", () => spec({}, {}, { capabilities: { bounding: ["CAP_KILL", "CAP_CHOWN"], effective: ["CAP_KILL"] } }), "process.capabilities.effective"],
    ["unknown rlimit", () => spec({}, {}, { rlimits: [{ type: "RLIMIT_BOGUS", soft: 1, hard: 1 }] }), "process.rlimits[0].type"],
    ["blockIO", () => spec({}, { resources: { blockIO: { weight: 100 } } }), "linux.resources.blockIO"],
    ["hugepages", () => spec({}, { resources: { hugepageLimits: [{ pageSize: "2MB", limit: 1 }] } }), "linux.resources.hugepageLimits"],
    ["kernel memory", () => spec({}, { resources: { memory: { kernel: 1 } } }), "linux.resources.memory.kernel"],
    ["rt cpu", () => spec({}, { resources: { cpu: { realtimeRuntime: 5 } } }), "linux.resources.cpu.realtimeRuntime"],
    ["shared propagation", () => spec({}, { rootfsPropagation: "shared" }), "linux.rootfsPropagation"],
    ["terminal without devpts", () => spec({}, {}, { terminal: true }), "process.terminal"],
    ["seccomp notify", () => spec({}, { seccomp: { defaultAction: "SCMP_ACT_NOTIFY" } }), "linux.seccomp.defaultAction"],
  ])("refused by name: %s", (_what, make, field) => {
    refused(() => tr(make()), field);
  });

  test("a controller missing on the host is refused", () => {
    refused(() => resourceKeys({ pids: { limit: 5 } }, { v1: new Set(), v2: new Set() }), "linux.resources.pids.limit");
    refused(() => resourceKeys({ memory: { swappiness: 10 } }, V2), "linux.resources.memory.swappiness");
  });
});

describe("seccomp → LXC policy v2", () => {
  test("default errno profile: allowlist with explicit actions, args in LXC's [index,value,op,mask] order", () => {
    const p = seccompPolicy({
      defaultAction: "SCMP_ACT_ERRNO",
      defaultErrnoRet: 38,
      syscalls: [
        { names: ["read", "write"], action: "SCMP_ACT_ALLOW" },
        { names: ["personality"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 8, op: "SCMP_CMP_EQ" }] },
        { names: ["clone"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 2114060288, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }] },
        { names: ["mount"], action: "SCMP_ACT_ERRNO", errnoRet: 1 },
      ],
    });
    expect(p).toBe("2\nallowlist errno 38\n[all]\nread allow\nwrite allow\npersonality allow [0,8,SCMP_CMP_EQ,0]\nclone allow [0,0,SCMP_CMP_MASKED_EQ,2114060288]\nmount errno 1\n");
  });

  test("default allow: denylist", () => {
    expect(seccompPolicy({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["kexec_load"], action: "SCMP_ACT_KILL" }] })).toBe("2\ndenylist\n[all]\nkexec_load kill\n");
  });

  test("refusals: notify listener, flags, unknown operator, trace", () => {
    refused(() => seccompPolicy({ defaultAction: "SCMP_ACT_ALLOW", listenerPath: "/x" }), "linux.seccomp.listenerPath");
    refused(() => seccompPolicy({ defaultAction: "SCMP_ACT_ALLOW", flags: ["SECCOMP_FILTER_FLAG_LOG"] }), "linux.seccomp.flags");
    refused(() => seccompPolicy({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["x"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 1, op: "SCMP_CMP_BOGUS" }] }] }), "args[0].op");
    refused(() => seccompPolicy({ defaultAction: "SCMP_ACT_TRACE" }), "linux.seccomp.defaultAction");
  });
});
