// qm for the PVE double: Proxmox's argv, outputs, error strings and exit codes (../shared/PROXMOX.md) over
// $PVE_DOUBLE_ROOT, with real QEMU processes underneath (QMP for status/stop). With `agent: 1` a guest
// agent answers on <vmid>.qga (test/pve/qga.ts): the double's stand-in for an OS with qemu-guest-agent.
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { allVmids, badParam, checkVmid, type Conf, confPath, die, dispatch, injected, loadConf, NODE, parseArgs, QEMU_RUN, readConf, run, vmidTaken, volumePath, writeConf } from "./lib.ts";
import { allocDisk, freeVolume, volidOf } from "./volumes.ts";

const CREATE_OPTS = new Set(["name", "memory", "cores", "sockets", "ostype", "agent", "boot", "scsihw", "description", "start", "onboot", "cpu", "tags"]);
const DISK = /^(scsi|virtio|sata|ide)\d+$/;

const pidFile = (vmid: string) => join(QEMU_RUN, `${vmid}.pid`);
const qmpPath = (vmid: string) => join(QEMU_RUN, `${vmid}.qmp`);
export const qgaPath = (vmid: string) => join(QEMU_RUN, `${vmid}.qga`);

function qemuPid(vmid: string): number {
  try {
    const pid = Number(readFileSync(pidFile(vmid), "utf8").trim());
    process.kill(pid, 0);
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(qmpPath(vmid)) ? pid : 0;
  } catch {
    return 0;
  }
}

/** one QMP command after the capabilities handshake; undefined when QMP does not answer */
async function qmp(vmid: string, execute: string): Promise<Record<string, unknown> | undefined> {
  return new Promise((resolve) => {
    const sock = connect(qmpPath(vmid));
    let buf = "";
    let stage = 0;
    const done = (v: Record<string, unknown> | undefined) => {
      sock.destroy();
      resolve(v);
    };
    setTimeout(() => done(undefined), 3000);
    sock.on("error", () => done(undefined));
    sock.on("close", () => done(stage === 2 && execute === "quit" ? {} : undefined));
    sock.on("data", (d) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (msg.event) continue;
        if (stage === 0) {
          stage = 1;
          sock.write('{"execute":"qmp_capabilities"}\n');
        } else if (stage === 1) {
          stage = 2;
          sock.write(`${JSON.stringify({ execute })}\n`);
        } else {
          done(msg.return ?? msg);
        }
      }
    });
  });
}

async function vmStatus(vmid: string): Promise<string> {
  if (!qemuPid(vmid)) return "stopped";
  const r = await qmp(vmid, "query-status");
  const s = String(r?.status ?? "running");
  return s === "paused" ? "paused" : "running";
}

function create(argv: string[]): void {
  const { pos, opts } = parseArgs(argv);
  const vmid = checkVmid(pos[0]);
  for (const [k, v] of opts) {
    if (!CREATE_OPTS.has(k) && !DISK.test(k) && !/^net\d+$/.test(k)) badParam(k, "property is not defined in schema and the schema does not allow additional properties");
    if (["memory", "cores", "sockets"].includes(k) && !/^\d+$/.test(v)) badParam(k, `type check ('integer') failed - got '${v}'`);
  }
  const taken = vmidTaken(vmid);
  if (taken) die(`${taken === "lxc" ? "CT" : "VM"} ${vmid} already exists on node '${NODE}'`);
  const ctx = `unable to create VM ${vmid} - `;
  const conf: Conf = { main: { description: [], keys: new Map(), raw: [] }, snapshots: new Map() };
  const k = conf.main.keys;
  const allocated: string[] = [];
  for (const [key, v] of opts) {
    if (!DISK.test(key)) continue;
    const [spec, ...o] = v.split(",");
    const m = /^([^:]+):(\d+(?:\.\d+)?)$/.exec(spec as string);
    if (!m) badParam(key, "invalid format - disk size or volume");
    const from = o.find((x) => x.startsWith("import-from="))?.slice(12);
    const volid = allocDisk(m[1] as string, vmid, Number(m[2]), ctx, from);
    allocated.push(volid);
    // PVE prints sizes in the largest whole unit: 64M, 4G
    const bytes = from ? Bun.file(volumePath(volid)).size : Number(m[2]) * 2 ** 30;
    const size = bytes % 2 ** 30 === 0 ? `${bytes / 2 ** 30}G` : `${Math.ceil(bytes / 2 ** 20)}M`;
    k.set(key, `${volid},size=${size}`);
    if (!k.has("boot")) k.set("boot", `order=${key}`);
  }
  if (injected("qm-create-after-alloc")) {
    allocated.forEach(freeVolume);
    die(`${ctx}injected failure after allocating ${allocated.join(", ") || "nothing"}`);
  }
  k.set("memory", opts.get("memory") ?? "2048");
  k.set("cores", opts.get("cores") ?? "1");
  k.set("name", opts.get("name") ?? `VM${vmid}`);
  k.set("ostype", opts.get("ostype") ?? "other");
  k.set("scsihw", opts.get("scsihw") ?? "virtio-scsi-single");
  k.set("smbios1", `uuid=${crypto.randomUUID()}`);
  k.set("vmgenid", crypto.randomUUID());
  for (const key of ["agent", "sockets", "onboot", "cpu", "tags", "boot"]) if (opts.has(key)) k.set(key, opts.get(key) as string);
  for (const [key, v] of opts) if (/^net\d+$/.test(key)) k.set(key, v);
  if (opts.has("description")) conf.main.description.push(opts.get("description") as string);
  writeConf("qemu-server", vmid, conf);
}

const agentOn = (c: Conf) => /^(1|enabled=1)/.test(c.main.keys.get("agent") ?? "");

async function start(argv: string[]): Promise<void> {
  const vmid = checkVmid(parseArgs(argv).pos[0]);
  const c = loadConf("qemu-server", vmid);
  if (qemuPid(vmid)) die(`VM ${vmid} already running`);
  const k = c.main.keys;
  mkdirSync(QEMU_RUN, { recursive: true });
  rmSync(qmpPath(vmid), { force: true });
  const drives: string[] = [];
  for (const [key, v] of k) if (DISK.test(key)) drives.push("-drive", `file=${volumePath(volidOf(v))},format=raw,if=virtio,id=${key}`);
  const accel = existsSync("/dev/kvm") ? "kvm:tcg" : "tcg";
  const r = run([
    "qemu-system-x86_64", "-name", `${k.get("name") ?? vmid},debug-threads=on`, "-machine", `accel=${accel}`,
    "-m", k.get("memory") ?? "2048", "-smp", k.get("cores") ?? "1", "-nodefaults", "-display", "none", "-serial", "none",
    "-monitor", "none", "-qmp", `unix:${qmpPath(vmid)},server=on,wait=off`, "-pidfile", pidFile(vmid), "-daemonize", ...drives,
  ], { quiet: true });
  if (r.code !== 0) die(`start failed: QEMU exited with code ${r.code}: ${r.err.trim().split("\n")[0]}`);
  if (agentOn(c)) {
    rmSync(qgaPath(vmid), { force: true });
    Bun.spawn(["setsid", "-f", process.execPath, join(import.meta.dir, "qga.ts"), vmid, qgaPath(vmid), pidFile(vmid)], { stdio: ["ignore", "ignore", "ignore"], env: process.env });
    for (let i = 0; i < 200 && !existsSync(qgaPath(vmid)); i++) await Bun.sleep(10);
  }
}

async function stop(argv: string[], graceful: boolean): Promise<void> {
  const { pos, opts } = parseArgs(argv);
  const vmid = checkVmid(pos[0]);
  loadConf("qemu-server", vmid);
  const pid = qemuPid(vmid);
  if (!pid) return; // unlike pct: stopping a stopped VM succeeds silently
  if (graceful) {
    await qmp(vmid, "system_powerdown");
    const timeout = Number(opts.get("timeout") ?? 180) * 1000;
    const end = Date.now() + timeout;
    while (Date.now() < end && qemuPid(vmid)) await Bun.sleep(100);
    if (qemuPid(vmid)) {
      if (opts.get("forceStop") !== "1") die(`VM quit/powerdown failed - got timeout`);
    } else return;
  }
  await qmp(vmid, "quit");
  for (let i = 0; i < 100 && qemuPid(vmid); i++) await Bun.sleep(20);
  if (qemuPid(vmid)) process.kill(pid, "SIGKILL");
  rmSync(pidFile(vmid), { force: true });
}

async function status(argv: string[]): Promise<void> {
  const vmid = checkVmid(parseArgs(argv).pos[0]);
  loadConf("qemu-server", vmid);
  process.stdout.write(`status: ${await vmStatus(vmid)}\n`);
}

async function list(): Promise<void> {
  const vms = allVmids().filter((v) => v.kind === "qemu-server");
  if (!vms.length) return;
  const row = (a: string, b: string, c: string, d: string, e: string, f: string) => `${a.padStart(10)} ${b.padEnd(20)} ${c.padEnd(10)} ${d.padEnd(10)} ${e.padStart(12)} ${f.padEnd(10)}\n`;
  let out = row("VMID", "NAME", "STATUS", "MEM(MB)", "BOOTDISK(GB)", "PID");
  for (const { vmid } of vms) {
    const k = readConf("qemu-server", vmid)?.main.keys ?? new Map<string, string>();
    const boot = /order=([a-z]+\d+)/.exec(k.get("boot") ?? "")?.[1];
    const m = /size=(\d+(?:\.\d+)?)([MG])/.exec((boot && k.get(boot)) ?? "");
    const gb = m ? Number(m[1]) / (m[2] === "M" ? 1024 : 1) : 0;
    out += row(vmid, k.get("name") ?? "", await vmStatus(vmid), k.get("memory") ?? "", gb.toFixed(2), String(qemuPid(vmid)));
  }
  process.stdout.write(out);
}

function config(argv: string[]): void {
  const vmid = checkVmid(parseArgs(argv).pos[0]);
  const c = loadConf("qemu-server", vmid);
  let out = c.main.description.length ? `description: ${c.main.description.join("\n")}\n` : "";
  for (const key of [...c.main.keys.keys()].sort()) out += `${key}: ${c.main.keys.get(key)}\n`;
  process.stdout.write(out);
}

function destroy(argv: string[]): void {
  const vmid = checkVmid(parseArgs(argv).pos[0]);
  const c = loadConf("qemu-server", vmid);
  if (qemuPid(vmid)) die(`VM ${vmid} is running - destroy failed`);
  for (const [k, v] of c.main.keys) if (DISK.test(k)) freeVolume(volidOf(v));
  rmSync(confPath("qemu-server", vmid), { force: true });
  rmSync(join(QEMU_RUN, `${vmid}.guest`), { recursive: true, force: true });
  rmSync(qgaPath(vmid), { force: true });
}

/** a QGA request/response over the agent socket; undefined when nothing answers in time */
async function qga(vmid: string, cmd: Record<string, unknown>, timeoutMs = 3000): Promise<Record<string, unknown> | undefined> {
  return new Promise((resolve) => {
    const sock = connect(qgaPath(vmid));
    let buf = "";
    const done = (v: Record<string, unknown> | undefined) => {
      sock.destroy();
      resolve(v);
    };
    setTimeout(() => done(undefined), timeoutMs);
    sock.on("error", () => done(undefined));
    sock.on("connect", () => sock.write(`${JSON.stringify(cmd)}\n`));
    sock.on("data", (d) => {
      buf += d.toString();
      const nl = buf.indexOf("\n");
      if (nl >= 0) done(JSON.parse(buf.slice(0, nl)));
    });
  });
}

/** Perl JSON->pretty->canonical, as qm prints it */
function perlPretty(o: Record<string, unknown>): string {
  const keys = Object.keys(o).sort();
  return `{\n${keys.map((k) => `   ${JSON.stringify(k)} : ${JSON.stringify(o[k])}`).join(",\n")}\n}\n`;
}

async function guest(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== "exec") die(`unknown command 'qm guest ${sub ?? ""}'`);
  const { pos, opts, rest: cmd } = parseArgs(rest);
  const vmid = checkVmid(pos[0]);
  const c = loadConf("qemu-server", vmid);
  if (!qemuPid(vmid)) die(`VM ${vmid} is not running`);
  if (!agentOn(c)) die("No QEMU guest agent configured");
  const all = [...pos.slice(1), ...cmd];
  if (!all.length) badParam("extra-args", "missing command");
  if (!(await qga(vmid, { execute: "guest-sync", arguments: { id: 1 } }))) die("QEMU guest agent is not running");
  const started = await qga(vmid, { execute: "guest-exec", arguments: { path: all[0], arg: all.slice(1), "capture-output": true } });
  const pid = (started?.return as { pid?: number } | undefined)?.pid;
  if (pid === undefined) die(`Agent error: ${JSON.stringify((started?.error as { desc?: string })?.desc ?? "guest-exec failed")}`);
  const end = Date.now() + Number(opts.get("timeout") ?? 30) * 1000;
  let res: Record<string, unknown> = { exited: 0 };
  while (Date.now() < end) {
    const st = (await qga(vmid, { execute: "guest-exec-status", arguments: { pid } }))?.return as Record<string, unknown> | undefined;
    if (st?.exited) {
      res = { exited: 1, exitcode: st.exitcode };
      if (st["out-data"]) res["out-data"] = Buffer.from(String(st["out-data"]), "base64").toString();
      if (st["err-data"]) res["err-data"] = Buffer.from(String(st["err-data"]), "base64").toString();
      break;
    }
    await Bun.sleep(50);
  }
  process.stdout.write(perlPretty(res));
}

async function suspendResume(argv: string[], resume: boolean): Promise<void> {
  const vmid = checkVmid(parseArgs(argv).pos[0]);
  loadConf("qemu-server", vmid);
  if (!qemuPid(vmid)) die(`VM ${vmid} not running`);
  await qmp(vmid, resume ? "cont" : "stop");
}

function set(argv: string[]): void {
  const { pos, opts } = parseArgs(argv);
  const vmid = checkVmid(pos[0]);
  const c = loadConf("qemu-server", vmid);
  const del = opts.get("delete");
  opts.delete("delete");
  for (const [k, v] of opts) {
    if (!CREATE_OPTS.has(k) && !/^net\d+$/.test(k)) badParam(k, "property is not defined in schema and the schema does not allow additional properties");
    if (["memory", "cores"].includes(k) && !/^\d+$/.test(v)) badParam(k, `type check ('integer') failed - got '${v}'`);
    c.main.keys.set(k, v);
  }
  for (const k of (del ?? "").split(",").filter(Boolean)) c.main.keys.delete(k);
  writeConf("qemu-server", vmid, c);
}

await dispatch("qm", {
  create,
  start,
  stop: (a) => stop(a, false),
  shutdown: (a) => stop(a, true),
  status,
  list,
  config,
  destroy,
  guest,
  suspend: (a) => suspendResume(a, false),
  resume: (a) => suspendResume(a, true),
  set,
});
