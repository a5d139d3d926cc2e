// proxmox-lxc: pct for everything Proxmox must know about (the CT, its config, its volume, snapshots), and
// the lxc engine (liblxc) for the hot path: start, state, attach, freeze. Where the CT's config needs what
// only pct's start does (unprivileged id shifting, network devices, storage mount points), `pct start` runs
// it instead, with nexcage's init and mounts added as raw lxc.* keys so the OCI create/start split holds.
//
// Create, in order (each step undone on failure, newest first):
//   VMID claim → image source → root volume (zfs/btrfs/dir, nexcage's storage drivers) → pct create → start
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import type { Backend, BackendContext, ContainerRecord, CreateOptions, ProbeResult } from "../types.ts";
import type { NexcageConfig } from "../../core/config.ts";
import { NexcageError } from "../../core/errors.ts";
import { log } from "../../core/log.ts";
import type { Resources } from "../../oci/spec.ts";
import { PveCli } from "../../proxmox/cli.ts";
import { allocateVmid, releaseVmid, vmidClaims } from "../../proxmox/vmid.ts";
import { volumeDriver, type StorageInfo, type Volume } from "../../storage/volumes.ts";
import { cgroupReadings } from "../common.ts";
import * as engine from "../lxc/engine.ts";
import { CONFIG_MARK } from "../lxc/unmanaged.ts";
import { packTemplate, templatePath } from "./template.ts";
import { classifyImage, pctCreateOptions, rootfsTarget } from "./translate.ts";

type ProxmoxConfig = NexcageConfig["proxmox"];

/** what create has done so far: persisted in the run dir, so a crashed create can still be undone */
interface Progress {
  vmid: string;
  lxcpath: string;
  etcPve: string;
  storage?: StorageInfo;
  volume?: Volume;
  pctCreated?: boolean;
  startPath?: "liblxc" | "pct";
  pve: ProxmoxConfig;
}

const runDir = (ctx: BackendContext, id: string) => `${ctx.backendRoot}/${id}`;
const vmidDir = (ctx: BackendContext) => vmidClaims(ctx.root);
const cli = (p: ProxmoxConfig) => new PveCli({ pct: p.pct, qm: p.qm, pvesh: p.pvesh, pvesm: p.pvesm, timeout: p.timeout });

function saveProgress(ctx: BackendContext, id: string, p: Progress): void {
  mkdirSync(runDir(ctx, id), { recursive: true, mode: 0o755 });
  writeFileSync(`${runDir(ctx, id)}/proxmox.json.tmp`, JSON.stringify(p));
  // rename: a reader never sees half a file
  renameSync(`${runDir(ctx, id)}/proxmox.json.tmp`, `${runDir(ctx, id)}/proxmox.json`);
}

function loadProgress(ctx: BackendContext, id: string): Progress | undefined {
  try {
    return JSON.parse(readFileSync(`${runDir(ctx, id)}/proxmox.json`, "utf8")) as Progress;
  } catch {
    return undefined;
  }
}

function target(ctx: BackendContext, rec: ContainerRecord, p?: Progress): engine.LxcTarget {
  const vmid = String(rec.data?.vmid ?? p?.vmid ?? "");
  const lxcpath = String(rec.data?.lxcpath ?? p?.lxcpath ?? "/var/lib/lxc");
  return { name: vmid, lxcpath, runDir: runDir(ctx, rec.id) };
}

async function storageInfo(pve: PveCli, id: string): Promise<StorageInfo> {
  const text = await pve.ok("pvesh", ["get", `/storage/${id}`, "--output-format", "json"]);
  const s = JSON.parse(text) as Record<string, string>;
  return { id, type: String(s.type), ...(s.path ? { path: s.path } : {}), ...(s.pool ? { pool: s.pool } : {}), ...(s.mountpoint ? { mountpoint: s.mountpoint } : {}) };
}

/** the template pct creates the CT from: a vztmpl/OCI archive volume as named, or the bundle's rootfs packed */
async function resolveTemplate(pve: PveCli, cfg: ProxmoxConfig, o: CreateOptions): Promise<string> {
  const src = classifyImage(o.spec.annotations ?? {});
  if (src.kind === "bundle") return packTemplate(pve, cfg.templateStorage, o.bundle, o.spec.root?.path ?? "rootfs");
  const path = await templatePath(pve, src.volid);
  if (!existsSync(path)) throw new NexcageError("notFound", `proxmox-lxc: template ${src.volid} does not exist (${path})`);
  if (src.kind === "oci-archive") {
    const list = Bun.spawnSync(["tar", "-tf", path], { stdout: "pipe", stderr: "pipe" });
    if (!list.stdout.toString().split("\n").some((l) => l.replace(/^\.\//, "") === "oci-layout")) {
      throw new NexcageError("invalidSpec", `proxmox-lxc: ${src.volid} is a .tar without oci-layout: not an OCI archive`);
    }
  }
  return src.volid;
}

/** liblxc can start what the generated config alone describes; pct's start adds id shifting, nics, volumes */
function startPathFor(cfg: ProxmoxConfig, pctConfig: string): "liblxc" | "pct" {
  if (cfg.startPath !== "auto") return cfg.startPath;
  const needsPct = /^(unprivileged: 1|net\d+:|mp\d+: (?!\/))/m.test(pctConfig);
  return needsPct ? "pct" : "liblxc";
}

/** the keys our init and OCI semantics need, as raw lxc.* lines in the Proxmox config (pct start path) */
function rawLines(config: string[]): string[] {
  return config
    .filter((l) => !/^lxc\.(rootfs|uts\.name|log|console|tty|cgroup|namespace\.keep)/.test(l))
    .map((l) => l.replace(/^(lxc\.[\w.]+) = /, "$1: "));
}

async function rollback(ctx: BackendContext, id: string, p: Progress): Promise<void> {
  const pve = cli(p.pve);
  const t: engine.LxcTarget = { name: p.vmid, lxcpath: p.lxcpath, runDir: runDir(ctx, id) };
  const undo: [string, () => Promise<unknown>][] = [];
  if (p.pctCreated) {
    undo.push(["pct stop", async () => (await pve.run("pct", ["status", p.vmid])).stdout.includes("running") && pve.run("pct", ["stop", p.vmid])]);
    // pct destroy frees the root volume too: it is in the CT's config
    undo.push(["pct destroy", () => pve.ok("pct", ["destroy", p.vmid, "--purge"])]);
  } else if (p.volume && p.storage) {
    undo.push(["free volume", () => volumeDriver(p.storage as StorageInfo).destroy(p.volume as Volume)]);
  }
  undo.push(["lxc config", async () => rmSync(`${t.lxcpath}/${p.vmid}`, { recursive: true, force: true })]);
  for (const [what, fn] of undo) {
    try {
      await fn();
    } catch (e) {
      log().warn(`rollback of ${id} (${what}): ${(e as Error).message}`);
    }
  }
  releaseVmid(vmidDir(ctx), p.vmid, id);
}

export const proxmoxLxcBackend: Backend = {
  name: "proxmox-lxc",
  capabilities: { nativeHooks: false, pause: true, update: true, exec: true },

  async probe(ctx): Promise<ProbeResult> {
    const r: ProbeResult = { backend: "proxmox-lxc", ok: true, problems: [], details: { stateRoot: ctx.backendRoot } };
    const pct = Bun.which(ctx.config?.proxmox.pct ?? "pct");
    if (!pct) r.problems.push("pct not found: this is not a Proxmox VE host (or set proxmox.pct in the nexcage config)");
    else r.details.pct = pct;
    await engine.probeLiblxc(r);
    r.ok = r.problems.length === 0;
    return r;
  },

  async create(ctx, o) {
    const cfg = o.config.proxmox;
    const pve = cli(cfg);
    if (o.spec.process?.terminal && !o.consoleSocket) throw new NexcageError("usage", "process.terminal is true: a --console-socket is required");
    const annotations = o.spec.annotations ?? {};
    const root = rootfsTarget(annotations, cfg.storage, cfg.rootfsSize);
    // nothing is created before the VMID is ours and free in Proxmox
    const vmid = await allocateVmid(pve, vmidDir(ctx), o.id, annotations);
    const lxcpath = engine.canonicalLxcpath(cfg.lxcpath);
    const p: Progress = { vmid, lxcpath, etcPve: cfg.etcPve, pve: cfg };
    saveProgress(ctx, o.id, p);
    try {
      const template = await resolveTemplate(pve, cfg, o);
      p.storage = await storageInfo(pve, root.storage);
      p.volume = await volumeDriver(p.storage).create(vmid, 0, root.sizeGiB);
      saveProgress(ctx, o.id, p);
      await pve.ok("pct", ["create", vmid, template, ...pctCreateOptions({ id: o.id, spec: o.spec, rootVolid: p.volume.volid, sizeGiB: root.sizeGiB })]);
      p.pctCreated = true;
      p.startPath = startPathFor(cfg, await pve.ok("pct", ["config", vmid]));
      saveProgress(ctx, o.id, p);

      const t: engine.LxcTarget = { name: vmid, lxcpath, runDir: runDir(ctx, o.id) };
      const tr = await engine.prepare(t, o.spec, p.volume.path, ctx.debug);
      const data = { vmid, lxcpath, startPath: p.startPath, volid: p.volume.volid };
      if (p.startPath === "liblxc") {
        // what `pct start` would write to <lxcpath>/<vmid>/config, from the same source, plus our init
        mkdirSync(`${lxcpath}/${vmid}`, { recursive: true, mode: 0o750 });
        writeFileSync(`${lxcpath}/${vmid}/config`, `${CONFIG_MARK} for CT ${vmid} from ${o.bundle}/config.json\n${tr.config.join("\n")}\n`, { mode: 0o640 });
        const { pid, monitor } = await engine.launch(t, o.spec.process?.terminal ? o.consoleSocket : undefined, tr.joinNamespaces);
        return { pid, waitPid: monitor, data };
      }
      if (tr.joinNamespaces.length) throw new NexcageError("invalidSpec", "proxmox-lxc: joining namespaces by path needs the liblxc start path");
      if (o.spec.process?.terminal) throw new NexcageError("invalidSpec", "proxmox-lxc: process.terminal needs the liblxc start path");
      appendFileSync(`${cfg.etcPve}/lxc/${vmid}.conf`, `${rawLines(tr.config).join("\n")}\n`);
      await pve.ok("pct", ["start", vmid]);
      return { pid: await engine.waitRunning(t), data };
    } catch (e) {
      await rollback(ctx, o.id, p);
      throw e;
    }
  },

  start: (ctx, rec) => engine.release(target(ctx, rec), rec),
  kill: async (_ctx, rec, sig, all) => engine.signal(rec, sig, all),

  async delete(ctx, rec, force) {
    const p = loadProgress(ctx, rec.id);
    if (!p) return; // nothing was ever created for it
    // whichever way the init was started, killing it stops the CT (rollback's `pct stop` covers the rest)
    await engine.stopAndClean(target(ctx, rec, p), rec, force);
    await rollback(ctx, rec.id, p);
  },

  pause: (ctx, rec) => engine.freeze(target(ctx, rec), false),
  resume: (ctx, rec) => engine.freeze(target(ctx, rec), true),
  exec: (ctx, rec, o) => engine.attach(target(ctx, rec), o),

  async update(ctx, rec, resources) {
    engine.updateResources(rec, resources as Resources);
    // keep Proxmox's view in step
    const p = loadProgress(ctx, rec.id);
    const mem = (resources as Resources).memory?.limit;
    if (p && mem && mem > 0) await cli(p.pve).ok("pct", ["set", p.vmid, "--memory", String(Math.ceil(mem / 1024 / 1024))]);
  },

  status: (ctx, rec) => engine.status(target(ctx, rec), rec),
  ...cgroupReadings,

  async snapshotHooks(ctx, rec) {
    const p = loadProgress(ctx, rec.id);
    if (!p?.volume || !p.storage) throw new NexcageError("notFound", `proxmox-lxc: ${rec.id} has no root volume on record`);
    const { pctSnapshotDriver } = await import("./snapshots.ts");
    return { rootfs: p.volume.path, home: `${runDir(ctx, rec.id)}/snapshots`, driver: pctSnapshotDriver(cli(p.pve), p.vmid, p.storage, p.volume) };
  },

  /** after pct rollback: the same CT's init again, the way create started it */
  async relaunch(ctx, rec) {
    const p = loadProgress(ctx, rec.id);
    if (!p?.volume) throw new NexcageError("notFound", `proxmox-lxc: ${rec.id} has no root volume on record`);
    const t = target(ctx, rec, p);
    // the run dir (init, process, a new exec fifo) is filled again; the snapshot metadata in it stays
    const { loadSpec } = await import("../../oci/spec.ts"); // not on `state`'s path
    const tr = await engine.prepare(t, await loadSpec(rec.bundle), p.volume.path, ctx.debug);
    if (p.startPath === "pct") {
      await cli(p.pve).ok("pct", ["start", p.vmid]);
      return { pid: await engine.waitRunning(t) };
    }
    writeFileSync(`${p.lxcpath}/${p.vmid}/config`, `${CONFIG_MARK} for CT ${p.vmid} from ${rec.bundle}/config.json\n${tr.config.join("\n")}\n`, { mode: 0o640 });
    const { pid, monitor } = await engine.launch(t, undefined, tr.joinNamespaces);
    return { pid, waitPid: monitor };
  },
};
