// pct for the PVE double: Proxmox's argv, outputs, error strings and exit codes (../shared/PROXMOX.md)
// over $PVE_DOUBLE_ROOT, with real LXC containers underneath (lxc-start, lxc-attach, lxc-stop).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { allVmids, badParam, checkVmid, type Conf, confPath, ctRunning, die, dispatch, injected, loadConf, LXCPATH, NODE, parseArgs, readConf, run, type Section, storage, vmidTaken, volumePath, writeConf } from "./lib.ts";
import { allocSubvol, freeVolume, volidOf, volumeExists } from "./volumes.ts";

const CREATE_OPTS = new Set(["hostname", "memory", "swap", "cores", "cpulimit", "cpuunits", "rootfs", "ostype", "unprivileged", "features", "start", "description", "storage", "arch", "onboot", "nameserver", "searchdomain", "tags", "password", "ssh-public-keys", "timezone"]);
const isIndexed = (k: string) => /^(net|mp)\d$/.test(k);

function checkOpts(opts: Map<string, string>, allowed: Set<string>): void {
  for (const [k, v] of opts) {
    if (!allowed.has(k) && !isIndexed(k)) badParam(k, "property is not defined in schema and the schema does not allow additional properties");
    if (["memory", "swap", "cores", "cpuunits"].includes(k) && !/^\d+$/.test(v)) badParam(k, `type check ('integer') failed - got '${v}'`);
    if (k === "memory" && Number(v) < 16) badParam(k, `value must have a minimum value of 16`);
    if (k === "cpulimit" && !/^\d+(\.\d+)?$/.test(v)) badParam(k, `type check ('number') failed - got '${v}'`);
    if (k === "hostname" && !/^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$/.test(v)) badParam(k, `value does not match the regex pattern`);
  }
}

/** unpack a template (tar.gz/xz/zst, or an OCI archive: oci-layout + index.json + blobs) into dir */
function extract(tmpl: string, dir: string, ctx: string): void {
  const list = run(["tar", "-tf", tmpl], { quiet: true });
  if (list.code !== 0) die(`${ctx}unable to read template '${tmpl}': ${list.err.trim()}`);
  if (tmpl.endsWith(".tar") && list.out.split("\n").some((l) => l.replace(/^\.\//, "") === "oci-layout")) {
    const tmp = mkdtempSync(join(tmpdir(), "pve-oci-"));
    try {
      run(["tar", "-xf", tmpl, "-C", tmp]);
      const index = JSON.parse(readFileSync(join(tmp, "index.json"), "utf8"));
      const blob = (d: string) => join(tmp, "blobs", ...d.split(":"));
      const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), "utf8"));
      for (const layer of manifest.layers) {
        const r = run(["tar", "-xpf", blob(layer.digest), "-C", dir]);
        if (r.code !== 0) die(`${ctx}unable to extract OCI layer ${layer.digest}`);
        // whiteouts: .wh.<name> deletes <name> from lower layers
        const wh = run(["find", dir, "-name", ".wh.*"], { quiet: true }).out.split("\n").filter(Boolean);
        for (const w of wh) {
          rmSync(w.replace(/\.wh\.([^/]+)$/, "$1"), { recursive: true, force: true });
          rmSync(w, { force: true });
        }
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    return;
  }
  const r = run(["tar", "-xpf", tmpl, "-C", dir, "--numeric-owner"]);
  if (r.code !== 0) die(`${ctx}unable to extract template '${tmpl}'`);
}

function create(argv: string[]): void {
  const { pos, opts } = parseArgs(argv);
  const vmid = checkVmid(pos[0]);
  const tmplId = pos[1];
  if (!tmplId) badParam("ostemplate", "property is missing and it is not optional");
  checkOpts(opts, CREATE_OPTS);
  const taken = vmidTaken(vmid);
  if (taken) die(`${taken === "lxc" ? "CT" : "VM"} ${vmid} already exists on node '${NODE}'`);
  const ctx = `unable to create CT ${vmid} - `;
  const tmpl = volumePath(tmplId, ctx);
  if (!existsSync(tmpl)) die(`${ctx}volume '${tmplId}' does not exist`);

  // rootfs: STORAGE:SIZE_GiB allocates; STORAGE:VOLNAME uses an existing volume owned by this CT
  const rootfsArg = opts.get("rootfs") ?? `${opts.get("storage") ?? "local"}:4`;
  const [spec, ...rootOpts] = rootfsArg.split(",");
  const m = /^([^:]+):(.+)$/.exec(spec as string);
  if (!m) badParam("rootfs", "invalid format");
  const allocated: string[] = [];
  let volid: string;
  let size = rootOpts.find((o) => o.startsWith("size="))?.slice(5) ?? "";
  if (/^\d+(\.\d+)?$/.test(m[2] as string)) {
    volid = allocSubvol(m[1] as string, vmid, Number(m[2]), ctx);
    allocated.push(volid);
    size = `${m[2]}G`;
  } else {
    volid = spec as string;
    if (!(m[2] as string).includes(`-${vmid}-disk-`)) die(`${ctx}volume '${volid}' does not belong to CT ${vmid}`);
    if (!volumeExists(volid)) die(`${ctx}volume '${volid}' does not exist`);
  }
  const cleanup = () => allocated.forEach(freeVolume);
  if (injected("pct-create-after-alloc")) {
    cleanup(); // pct frees what it allocated itself; anything the caller made stays the caller's
    die(`${ctx}injected failure after allocating ${volid}`);
  }
  try {
    extract(tmpl, volumePath(volid, ctx), ctx);
  } catch (e) {
    cleanup();
    throw e;
  }

  const conf: Conf = { main: { description: [], keys: new Map(), raw: [] }, snapshots: new Map() };
  const k = conf.main.keys;
  k.set("arch", opts.get("arch") ?? "amd64");
  k.set("hostname", opts.get("hostname") ?? `CT${vmid}`);
  k.set("memory", opts.get("memory") ?? "512");
  k.set("swap", opts.get("swap") ?? "512");
  k.set("ostype", opts.get("ostype") ?? "unmanaged");
  k.set("rootfs", `${volid}${size ? `,size=${size}` : ""}`);
  for (const key of ["cores", "cpulimit", "cpuunits", "features", "unprivileged", "onboot", "nameserver", "searchdomain", "tags"]) if (opts.has(key)) k.set(key, opts.get(key) as string);
  for (const [key, v] of opts) if (isIndexed(key)) k.set(key, v);
  if (opts.has("description")) conf.main.description.push(opts.get("description") as string);
  writeConf("lxc", vmid, conf);
  if (opts.get("start") === "1") start([vmid]);
}

/** the LXC config pct generates at start (/var/lib/lxc/<vmid>/config) */
function lxcConfig(vmid: string, conf: Conf): string {
  const k = conf.main.keys;
  if (k.get("unprivileged") === "1") die(`unable to start CT ${vmid} - the PVE double runs privileged containers only`);
  const v1 = existsSync("/sys/fs/cgroup/memory/memory.limit_in_bytes");
  const cg = (v1key: string, v2key: string, v: string | number) => (v1 ? `lxc.cgroup.${v1key} = ${v}` : `lxc.cgroup2.${v2key} = ${v}`);
  const mem = Number(k.get("memory") ?? 512) * 1024 * 1024;
  const swap = Number(k.get("swap") ?? 512) * 1024 * 1024;
  const lines = [
    `lxc.arch = ${k.get("arch") ?? "amd64"}`,
    `lxc.uts.name = ${k.get("hostname") ?? `CT${vmid}`}`,
    `lxc.rootfs.path = dir:${volumePath(volidOf(k.get("rootfs") as string))}`,
    cg("memory.limit_in_bytes", "memory.max", mem),
    v1 ? `lxc.cgroup.memory.memsw.limit_in_bytes = ${mem + swap}` : `lxc.cgroup2.memory.swap.max = ${swap}`,
    "lxc.console.path = none",
    "lxc.tty.max = 0",
    "lxc.autodev = 1",
    "lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed",
    "lxc.apparmor.profile = unconfined",
    "lxc.init.cmd = /sbin/init",
    `lxc.log.file = ${LXCPATH}/${vmid}/lxc.log`,
    "lxc.log.level = WARN",
  ];
  if (k.has("cpulimit") && Number(k.get("cpulimit")) > 0) {
    const q = Math.round(Number(k.get("cpulimit")) * 100000);
    lines.push(...(v1 ? [`lxc.cgroup.cpu.cfs_period_us = 100000`, `lxc.cgroup.cpu.cfs_quota_us = ${q}`] : [`lxc.cgroup2.cpu.max = ${q} 100000`]));
  }
  if (k.has("cpuunits")) lines.push(cg("cpu.shares", "cpu.weight", k.get("cpuunits") as string));
  for (const [key, value] of k) {
    const mp = /^mp(\d)$/.exec(key);
    if (mp) {
      const [src, ...o] = value.split(",");
      const dest = o.find((x) => x.startsWith("mp="))?.slice(3);
      if (!dest) die(`unable to start CT ${vmid} - ${key}: missing mp= option`);
      const path = src?.startsWith("/") ? src : volumePath(src as string);
      lines.push(`lxc.mount.entry = ${path} ${dest.replace(/^\//, "")} none rbind,create=dir${o.includes("ro=1") ? ",ro" : ""} 0 0`);
    }
    const net = /^net(\d)$/.exec(key);
    if (net) {
      const p = Object.fromEntries(value.split(",").map((x) => x.split("=") as [string, string]));
      if (p.bridge && !existsSync(`/sys/class/net/${p.bridge}/bridge`)) die(`bridge '${p.bridge}' does not exist`);
      lines.push(`lxc.net.${net[1]}.type = veth`, `lxc.net.${net[1]}.link = ${p.bridge}`, `lxc.net.${net[1]}.name = ${p.name ?? `eth${net[1]}`}`, `lxc.net.${net[1]}.flags = up`);
    }
  }
  // raw lxc.* keys last: they override, as in PVE
  for (const [rk, rv] of conf.main.raw) lines.push(`${rk} = ${rv}`);
  return `${lines.join("\n")}\n`;
}

function start(argv: string[]): void {
  const vmid = checkVmid(parseArgs(argv).pos[0]);
  const conf = loadConf("lxc", vmid);
  if (ctRunning(vmid)) die(`CT ${vmid} already running`);
  if (conf.main.keys.get("lock")) die(`CT ${vmid} is locked (${conf.main.keys.get("lock")})`);
  mkdirSync(join(LXCPATH, vmid), { recursive: true });
  writeFileSync(join(LXCPATH, vmid, "config"), lxcConfig(vmid, conf));
  // PVE starts it through systemd (pve-container@<vmid>): detached from the caller
  const r = run(["lxc-start", "-n", vmid, "-P", LXCPATH, "-d"], { quiet: true });
  if (r.code !== 0) die(`startup for container '${vmid}' failed`);
}

function stop(argv: string[], graceful: boolean): void {
  const { pos, opts } = parseArgs(argv);
  const vmid = checkVmid(pos[0]);
  loadConf("lxc", vmid);
  if (!ctRunning(vmid)) die(`CT ${vmid} not running`);
  const timeout = opts.get("timeout") ?? "60";
  const r = run(["lxc-stop", "-n", vmid, "-P", LXCPATH, ...(graceful ? ["-t", timeout] : ["-k"])], { quiet: true });
  if (r.code !== 0) {
    if (graceful && opts.get("forceStop") !== "1") die(`command 'lxc-stop -n ${vmid} --nokill --timeout ${timeout}' failed: exit code 1`);
    run(["lxc-stop", "-n", vmid, "-P", LXCPATH, "-k"], { quiet: true });
  }
}

function status(argv: string[]): void {
  const vmid = checkVmid(parseArgs(argv).pos[0]);
  loadConf("lxc", vmid);
  process.stdout.write(`status: ${ctRunning(vmid) ? "running" : "stopped"}\n`);
}

function list(): void {
  const cts = allVmids().filter((v) => v.kind === "lxc");
  if (!cts.length) return;
  const row = (a: string, b: string, c: string, d: string) => `${a.padEnd(10)} ${b.padEnd(10)} ${c.padEnd(12)} ${d.padEnd(20)}\n`;
  let out = row("VMID", "Status", "Lock", "Name");
  for (const { vmid } of cts) {
    const c = readConf("lxc", vmid);
    out += row(vmid, ctRunning(vmid) ? "running" : "stopped", c?.main.keys.get("lock") ?? "", c?.main.keys.get("hostname") ?? "");
  }
  process.stdout.write(out);
}

function config(argv: string[]): void {
  const { pos, opts } = parseArgs(argv);
  const vmid = checkVmid(pos[0]);
  const conf = loadConf("lxc", vmid);
  const snap = opts.get("snapshot");
  const sec = snap ? conf.snapshots.get(snap) : conf.main;
  if (!sec) die(`snapshot '${snap}' does not exist`);
  let out = sec.description.length ? `description: ${sec.description.join("\n")}\n` : "";
  for (const key of [...sec.keys.keys()].sort()) out += `${key}: ${sec.keys.get(key)}\n`;
  process.stdout.write(out);
}

function set(argv: string[]): void {
  const { pos, opts } = parseArgs(argv);
  const vmid = checkVmid(pos[0]);
  const conf = loadConf("lxc", vmid);
  const del = opts.get("delete");
  opts.delete("delete");
  checkOpts(opts, new Set([...CREATE_OPTS, "lock"]));
  for (const [k, v] of opts) {
    if (k === "description") conf.main.description = [v];
    else conf.main.keys.set(k, v);
  }
  for (const k of (del ?? "").split(",").filter(Boolean)) conf.main.keys.delete(k);
  writeConf("lxc", vmid, conf);
}

function exec(argv: string[]): void {
  const { pos, rest } = parseArgs(argv);
  const vmid = checkVmid(pos[0]);
  loadConf("lxc", vmid);
  if (!ctRunning(vmid)) die(`container '${vmid}' not running!`);
  if (!rest.length) badParam("extra-args", "missing command");
  const r = Bun.spawnSync(["lxc-attach", "-n", vmid, "-P", LXCPATH, "--", ...rest], { stdin: "inherit", stdout: "inherit", stderr: "inherit" });
  process.exit(r.exitCode ?? 255);
}

function destroy(argv: string[]): void {
  const vmid = checkVmid(parseArgs(argv).pos[0]);
  const conf = loadConf("lxc", vmid);
  if (ctRunning(vmid)) die(`unable to destroy CT ${vmid} - container is running`);
  for (const [k, v] of conf.main.keys) if (k === "rootfs" || (/^mp\d$/.test(k) && !v.startsWith("/"))) freeVolume(volidOf(v));
  rmSync(join(LXCPATH, vmid), { recursive: true, force: true });
  rmSync(confPath("lxc", vmid), { force: true });
}

// ---- snapshots: the rootfs volume's own snapshots, [name] sections in the config ----

function snapName(name: string | undefined): string {
  if (!name) badParam("snapname", "property is missing and it is not optional");
  if (!/^[a-zA-Z][a-zA-Z0-9_-]+$/.test(name) || name.length > 40) badParam("snapname", "invalid format - invalid configuration ID");
  if (name === "current" || name === "vzdump") die(`snapshot name '${name}' is reserved`);
  return name;
}

function volSnapshot(vmid: string, volid: string, op: "create" | "rollback" | "delete", name: string): void {
  const [id, vol] = volid.split(":") as [string, string];
  const s = storage(id, "");
  if (s.type === "zfspool") {
    const ds = `${s.props.pool}/${vol}`;
    const cmd = op === "create" ? ["zfs", "snapshot", `${ds}@${name}`] : op === "rollback" ? ["zfs", "rollback", `${ds}@${name}`] : ["zfs", "destroy", `${ds}@${name}`];
    const r = run(cmd, { quiet: true });
    if (r.code !== 0) die(`zfs error: ${r.err.trim()}`);
    return;
  }
  if (s.type !== "btrfs") die(`snapshot feature is not available`);
  const path = volumePath(volid);
  // pve-storage's BTRFS layout: a snapshot is the read-only subvolume <volume>@<name> next to it
  const snap = `${path}@${name}`;
  if (op === "create") {
    if (run(["btrfs", "subvolume", "snapshot", "-r", path, snap], { quiet: true }).code !== 0) die(`btrfs snapshot of CT ${vmid} failed`);
  } else if (op === "rollback") {
    run(["btrfs", "subvolume", "delete", path], { quiet: true });
    if (run(["btrfs", "subvolume", "snapshot", snap, path], { quiet: true }).code !== 0) die(`btrfs rollback of CT ${vmid} failed`);
  } else {
    run(["btrfs", "subvolume", "delete", snap], { quiet: true });
  }
}

function snapshot(argv: string[]): void {
  const { pos, opts } = parseArgs(argv);
  const vmid = checkVmid(pos[0]);
  const name = snapName(pos[1]);
  const conf = loadConf("lxc", vmid);
  if (conf.snapshots.has(name)) die(`snapshot name '${name}' already used`);
  volSnapshot(vmid, volidOf(conf.main.keys.get("rootfs") as string), "create", name);
  const sec: Section = { description: opts.has("description") ? [opts.get("description") as string] : [], keys: new Map(conf.main.keys), raw: [...conf.main.raw] };
  sec.keys.set("snaptime", String(Math.floor(Date.now() / 1000)));
  conf.snapshots.set(name, sec);
  conf.main.keys.set("parent", name);
  writeConf("lxc", vmid, conf);
}

function listsnapshot(argv: string[]): void {
  const vmid = checkVmid(parseArgs(argv).pos[0]);
  const conf = loadConf("lxc", vmid);
  // PVE prints the snapshot tree, oldest first, then "current"
  const order = [...conf.snapshots.entries()].sort((a, b) => Number(a[1].keys.get("snaptime")) - Number(b[1].keys.get("snaptime")));
  let out = "";
  let depth = 0;
  for (const [name, s] of order) {
    const t = new Date(Number(s.keys.get("snaptime")) * 1000).toISOString().replace("T", " ").slice(0, 19);
    out += `${" ".repeat(depth)}\`-> ${name.padEnd(24)} ${t}     ${s.description[0] ?? "no-description"}\n`;
    depth++;
  }
  out += `${" ".repeat(depth)}\`-> current${" ".repeat(42)}You are here!\n`;
  process.stdout.write(out);
}

function rollback(argv: string[]): void {
  const { pos } = parseArgs(argv);
  const vmid = checkVmid(pos[0]);
  const name = snapName(pos[1]);
  const conf = loadConf("lxc", vmid);
  const sec = conf.snapshots.get(name);
  if (!sec) die(`snapshot '${name}' does not exist`);
  if (ctRunning(vmid)) run(["lxc-stop", "-n", vmid, "-P", LXCPATH, "-k"], { quiet: true });
  volSnapshot(vmid, volidOf(conf.main.keys.get("rootfs") as string), "rollback", name);
  conf.main = { description: [...sec.description], keys: new Map(sec.keys), raw: [...sec.raw] };
  conf.main.keys.delete("snaptime");
  conf.main.keys.set("parent", name);
  writeConf("lxc", vmid, conf);
}

function delsnapshot(argv: string[]): void {
  const { pos } = parseArgs(argv);
  const vmid = checkVmid(pos[0]);
  const name = snapName(pos[1]);
  const conf = loadConf("lxc", vmid);
  const sec = conf.snapshots.get(name);
  if (!sec) die(`snapshot '${name}' does not exist`);
  volSnapshot(vmid, volidOf(conf.main.keys.get("rootfs") as string), "delete", name);
  const parent = sec.keys.get("parent");
  for (const s of [conf.main, ...conf.snapshots.values()]) {
    if (s.keys.get("parent") !== name) continue;
    if (parent) s.keys.set("parent", parent);
    else s.keys.delete("parent");
  }
  conf.snapshots.delete(name);
  writeConf("lxc", vmid, conf);
}

await dispatch("pct", {
  create,
  start,
  stop: (a) => stop(a, false),
  shutdown: (a) => stop(a, true),
  status,
  list,
  config,
  set,
  exec,
  destroy,
  snapshot,
  listsnapshot,
  rollback,
  delsnapshot,
});
