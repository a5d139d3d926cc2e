// The PVE double's shared core: a Proxmox VE node under $PVE_DOUBLE_ROOT (its /etc/pve, /var/lib/vz,
// /var/lib/lxc, /var/run/qemu-server), config files in Proxmox's format, storages, VMIDs, errors and exit
// codes as ../shared/PROXMOX.md documents them. Containers and VMs underneath are real (LXC, QEMU).
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

export const ROOT = process.env.PVE_DOUBLE_ROOT ?? "";
if (!ROOT) {
  process.stderr.write("PVE double: PVE_DOUBLE_ROOT is not set\n");
  process.exit(255);
}
export const NODE = process.env.PVE_DOUBLE_NODE ?? "pve";
export const ETC = join(ROOT, "etc/pve");
export const LXCPATH = join(ROOT, "var/lib/lxc");
export const QEMU_RUN = join(ROOT, "var/run/qemu-server");
export const VMID_RE = /^[1-9][0-9]{2,8}$/;

// as on a real node: /etc/pve/lxc and /etc/pve/qemu-server point at this node's directories
for (const kind of ["lxc", "qemu-server"]) {
  const dir = join(ETC, "nodes", NODE, kind);
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(ETC, kind))) symlinkSync(join("nodes", NODE, kind), join(ETC, kind));
}

/** failure injection for rollback tests: PVE_DOUBLE_FAIL=pct-create-after-alloc,qm-create-after-alloc ... */
export const injected = (point: string) => (process.env.PVE_DOUBLE_FAIL ?? "").split(",").includes(point);

/** a task failure: one line on stderr, exit 255 (PVE's CLI handler dies) */
export function die(msg: string, code = 255): never {
  process.stderr.write(`${msg}\n`);
  process.exit(code);
}

/** 400: bad parameters, as PVE's API schema check reports them */
export function badParam(param: string, reason: string): never {
  process.stderr.write(`400 Parameter verification failed.\n${param}: ${reason}\n`);
  process.exit(255);
}

export function checkVmid(v: string | undefined): string {
  if (!v) badParam("vmid", "property is missing and it is not optional");
  if (!VMID_RE.test(v)) badParam("vmid", "invalid format - value does not look like a valid VM ID");
  return v;
}

// ---- config files: [description lines] key: value (sorted), raw lxc.* lines; [snapshot] sections ----

export interface Section {
  description: string[];
  keys: Map<string, string>;
  /** LXC raw keys in file order: ["lxc.init.cmd", "/bin/sh"] */
  raw: [string, string][];
}
export interface Conf {
  main: Section;
  snapshots: Map<string, Section>;
}

const emptySection = (): Section => ({ description: [], keys: new Map(), raw: [] });

export function parseConf(text: string): Conf {
  const conf: Conf = { main: emptySection(), snapshots: new Map() };
  let cur = conf.main;
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const sec = /^\[([^\]]+)\]$/.exec(line);
    if (sec) {
      cur = emptySection();
      conf.snapshots.set(sec[1] as string, cur);
      continue;
    }
    if (line.startsWith("#")) {
      cur.description.push(decodeURIComponent(line.slice(1)));
      continue;
    }
    const m = /^([a-z][a-z0-9_.]*):\s*(.*)$/.exec(line);
    if (!m) continue;
    if ((m[1] as string).startsWith("lxc.")) cur.raw.push([m[1] as string, m[2] as string]);
    else cur.keys.set(m[1] as string, m[2] as string);
  }
  return conf;
}

function writeSection(s: Section): string {
  let out = s.description.map((d) => `#${d}\n`).join("");
  for (const k of [...s.keys.keys()].sort()) out += `${k}: ${s.keys.get(k)}\n`;
  for (const [k, v] of s.raw) out += `${k}: ${v}\n`;
  return out;
}

export function formatConf(c: Conf): string {
  let out = writeSection(c.main);
  for (const [name, s] of c.snapshots) out += `\n[${name}]\n${writeSection(s)}`;
  return out;
}

export type Kind = "lxc" | "qemu-server";
export const confPath = (kind: Kind, vmid: string) => join(ETC, "nodes", NODE, kind, `${vmid}.conf`);

export function readConf(kind: Kind, vmid: string): Conf | undefined {
  try {
    return parseConf(readFileSync(confPath(kind, vmid), "utf8"));
  } catch {
    return undefined;
  }
}

/** the config or PVE's message for a missing one */
export function loadConf(kind: Kind, vmid: string): Conf {
  const c = readConf(kind, vmid);
  if (!c) die(`Configuration file 'nodes/${NODE}/${kind}/${vmid}.conf' does not exist`, 255);
  return c;
}

export function writeConf(kind: Kind, vmid: string, c: Conf): void {
  const p = confPath(kind, vmid);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(`${p}.tmp`, formatConf(c));
  renameSync(`${p}.tmp`, p);
}

export function allVmids(): { vmid: string; kind: Kind }[] {
  const out: { vmid: string; kind: Kind }[] = [];
  for (const kind of ["lxc", "qemu-server"] as Kind[]) {
    const dir = join(ETC, "nodes", NODE, kind);
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir)) if (f.endsWith(".conf")) out.push({ vmid: f.slice(0, -5), kind });
  }
  return out.sort((a, b) => Number(a.vmid) - Number(b.vmid));
}

/** VMIDs are one namespace for CTs and VMs */
export function vmidTaken(vmid: string): Kind | undefined {
  if (existsSync(confPath("lxc", vmid))) return "lxc";
  if (existsSync(confPath("qemu-server", vmid))) return "qemu-server";
  return undefined;
}

// ---- storage.cfg ----

export interface Storage {
  type: string;
  id: string;
  props: Record<string, string>;
}

export function storages(): Storage[] {
  const p = join(ETC, "storage.cfg");
  if (!existsSync(p)) {
    mkdirSync(ETC, { recursive: true });
    const vz = join(ROOT, "var/lib/vz");
    writeFileSync(p, `dir: local\n\tpath ${vz}\n\tcontent iso,vztmpl,backup,rootdir,images\n\n`);
  }
  const out: Storage[] = [];
  let cur: Storage | undefined;
  for (const line of readFileSync(p, "utf8").split("\n")) {
    const head = /^(\w+):\s*(\S+)\s*$/.exec(line);
    if (head) {
      cur = { type: head[1] as string, id: head[2] as string, props: {} };
      out.push(cur);
      continue;
    }
    const prop = /^\s+(\S+)\s+(.*)$/.exec(line);
    if (prop && cur) cur.props[prop[1] as string] = (prop[2] as string).trim();
  }
  return out;
}

export function storage(id: string, ctx: string): Storage {
  const s = storages().find((x) => x.id === id);
  if (!s) die(`${ctx}storage '${id}' does not exist`);
  return s;
}

/** where a storage keeps things: dir/btrfs have a path; zfspool mounts under /<pool> */
export function storagePath(s: Storage): string {
  if (s.type === "zfspool") return s.props.mountpoint ?? `/${s.props.pool}`;
  return s.props.path ?? "";
}

/** volid → path (`pvesm path`) */
export function volumePath(volid: string, ctx = ""): string {
  const m = /^([a-zA-Z][\w.-]*):(.+)$/.exec(volid);
  if (!m) die(`${ctx}unable to parse volume ID '${volid}'`);
  const s = storage(m[1] as string, ctx);
  const name = m[2] as string;
  const base = storagePath(s);
  const tmpl = /^vztmpl\/(.+)$/.exec(name);
  if (tmpl) return join(base, "template/cache", tmpl[1] as string);
  const iso = /^iso\/(.+)$/.exec(name);
  if (iso) return join(base, "template/iso", iso[1] as string);
  if (s.type === "zfspool") return join(base, name);
  const vol = /^(?:(\d+)\/)?((?:subvol|vm|base)-(\d+)-disk-\d+(?:\.\w+)?)$/.exec(name);
  if (!vol) die(`${ctx}unable to parse volume name '${name}'`);
  return join(base, "images", vol[3] as string, vol[2] as string);
}

/** `pvesh get /cluster/nextid`: the lowest free id in [100, 1000000) */
export function nextId(): string {
  const used = new Set(allVmids().map((v) => v.vmid));
  for (let i = 100; i < 1_000_000; i++) if (!used.has(String(i))) return String(i);
  return die("unable to get any free VMID");
}

/** argv after the subcommand: positionals and --key value / --key=value options (PVE's CLI syntax) */
export function parseArgs(argv: string[]): { pos: string[]; opts: Map<string, string>; rest: string[] } {
  const pos: string[] = [];
  const opts = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--") return { pos, opts, rest: argv.slice(i + 1) };
    if (a.startsWith("--") || (a.startsWith("-") && a.length > 1 && !/^-\d/.test(a))) {
      const k = a.replace(/^--?/, "");
      const eq = k.indexOf("=");
      if (eq > 0) opts.set(k.slice(0, eq), k.slice(eq + 1));
      else opts.set(k, argv[++i] ?? "");
    } else pos.push(a);
  }
  return { pos, opts, rest: [] };
}

export function run(argv: string[], opts: { quiet?: boolean } = {}): { code: number; out: string; err: string } {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  const res = { code: r.exitCode ?? 255, out: r.stdout.toString(), err: r.stderr.toString() };
  if (!opts.quiet && res.code !== 0) process.stderr.write(res.err);
  return res;
}

/** run `<tool> <verb> args...` from process.argv; an unknown verb fails as PVE's CLI does */
export async function dispatch(tool: string, verbs: Record<string, (a: string[]) => void | Promise<void>>): Promise<never> {
  const [cmd, ...args] = process.argv.slice(2);
  const verb = verbs[cmd ?? ""];
  if (!verb) die(`unknown command '${tool} ${cmd ?? ""}'`);
  await verb(args);
  process.exit(0);
}

/** "running" the way PVE decides it: LXC's abstract command socket exists */
export function ctRunning(vmid: string): boolean {
  const want = `@${LXCPATH}/${vmid}/command`;
  return readFileSync("/proc/net/unix", "utf8").split("\n").some((l) => l.endsWith(` ${want}`));
}
