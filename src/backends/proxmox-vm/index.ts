// proxmox-vm: an OCI bundle as a Proxmox VM through qm. The bundle gives the resources (memory, cores) and,
// in an annotation, the disk image the VM boots; the VM runs its own OS, so process.args are not run (exec
// goes through the guest agent: `qm guest exec`). OCI states: created = defined and never started,
// running/paused from `qm status`, stopped once it ran and is down. state's pid is the VM's QEMU.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { Backend, BackendContext, ContainerRecord, ProbeResult, Status } from "../types.ts";
import type { NexcageConfig } from "../../core/config.ts";
import { NexcageError } from "../../core/errors.ts";
import { log } from "../../core/log.ts";
import { cgroupStats } from "../../core/proc.ts";
import { parseProcess, type Resources } from "../../oci/spec.ts";
import { PveCli } from "../../proxmox/cli.ts";
import { allocateVmid, releaseVmid, vmidClaims } from "../../proxmox/vmid.ts";
import { decodeGuestExec, qmCreateOptions, qmListPid, vmStatus } from "./translate.ts";

type ProxmoxConfig = NexcageConfig["proxmox"];
const cli = (p: ProxmoxConfig) => new PveCli({ pct: p.pct, qm: p.qm, pvesh: p.pvesh, pvesm: p.pvesm, timeout: p.timeout });
const dir = (ctx: BackendContext, id: string) => `${ctx.backendRoot}/${id}`;

/** what the record needs besides the VMID: the Proxmox config to reach qm with, and whether it ever ran */
function saved(ctx: BackendContext, rec: ContainerRecord): ProxmoxConfig {
  try {
    return JSON.parse(readFileSync(`${dir(ctx, rec.id)}/proxmox.json`, "utf8")) as ProxmoxConfig;
  } catch {
    throw new NexcageError("notFound", `proxmox-vm: ${rec.id} has no Proxmox settings (was it created by this nexcage?)`);
  }
}
const vmidOf = (ctx: BackendContext, rec: ContainerRecord) => String(rec.data?.vmid ?? readFileSync(`${dir(ctx, rec.id)}/vmid`, "utf8"));
const startedMark = (ctx: BackendContext, id: string) => `${dir(ctx, id)}/started`;

function qmSync(cfg: ProxmoxConfig, args: string[]): { code: number; out: string; err: string } {
  const r = Bun.spawnSync([cfg.qm, ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode ?? 255, out: r.stdout.toString(), err: r.stderr.toString() };
}

async function qemuPid(pve: PveCli, vmid: string): Promise<number> {
  return qmListPid(await pve.ok("qm", ["list"]), vmid);
}

export const proxmoxVmBackend: Backend = {
  name: "proxmox-vm",
  capabilities: { nativeHooks: false, pause: true, update: true, exec: true },

  async probe(ctx): Promise<ProbeResult> {
    const r: ProbeResult = { backend: "proxmox-vm", ok: true, problems: [], details: { stateRoot: ctx.backendRoot } };
    const qm = Bun.which(ctx.config?.proxmox.qm ?? "qm");
    if (!qm) r.problems.push("qm not found: this is not a Proxmox VE host (or set proxmox.qm in the nexcage config)");
    else r.details.qm = qm;
    r.ok = r.problems.length === 0;
    return r;
  },

  async create(ctx, o) {
    const cfg = o.config.proxmox;
    const pve = cli(cfg);
    // the whole translation first: a bad bundle creates nothing, not even a VMID claim
    const opts = qmCreateOptions({ id: o.id, spec: o.spec, storage: cfg.storage });
    const claims = vmidClaims(ctx.root);
    const vmid = await allocateVmid(pve, claims, o.id, o.spec.annotations ?? {});
    mkdirSync(dir(ctx, o.id), { recursive: true, mode: 0o700 });
    writeFileSync(`${dir(ctx, o.id)}/proxmox.json`, JSON.stringify(cfg));
    writeFileSync(`${dir(ctx, o.id)}/vmid`, vmid);
    try {
      await pve.ok("qm", ["create", vmid, ...opts]);
    } catch (e) {
      // qm frees what it allocated itself; the claim and our files are ours to drop
      releaseVmid(claims, vmid, o.id);
      rmSync(dir(ctx, o.id), { recursive: true, force: true });
      throw e;
    }
    return { pid: 0, data: { vmid } };
  },

  async start(ctx, rec) {
    const cfg = saved(ctx, rec);
    const pve = cli(cfg);
    const vmid = vmidOf(ctx, rec);
    await pve.ok("qm", ["start", vmid]);
    writeFileSync(startedMark(ctx, rec.id), "");
    return qemuPid(pve, vmid);
  },

  async kill(ctx, rec, signal) {
    const cfg = saved(ctx, rec);
    const vmid = vmidOf(ctx, rec);
    // a VM takes two signals: KILL = power off now, TERM/INT = ACPI shutdown, powered off if it ignores it
    if (signal === 9) await cli(cfg).ok("qm", ["stop", vmid]);
    else if (signal === 15 || signal === 2) await cli(cfg).ok("qm", ["shutdown", vmid, "--timeout", "30", "--forceStop", "1"]);
    else throw new NexcageError("unsupported", `proxmox-vm: signal ${signal} cannot be sent to a VM (use TERM for a shutdown or KILL to power off)`);
  },

  async delete(ctx, rec, force) {
    let cfg: ProxmoxConfig;
    try {
      cfg = saved(ctx, rec);
    } catch {
      return; // never got as far as qm create
    }
    const pve = cli(cfg);
    const vmid = vmidOf(ctx, rec);
    const st = vmStatus((await pve.run("qm", ["status", vmid])).stdout);
    if (st === "running" || st === "paused") {
      if (!force) throw new NexcageError("badState", `cannot delete container ${rec.id} that is not stopped`);
      await pve.ok("qm", ["stop", vmid]);
    }
    const r = await pve.run("qm", ["destroy", vmid, "--purge"]);
    if (r.code !== 0 && !/does not exist/.test(r.stderr)) throw new NexcageError("failure", `proxmox: qm destroy ${vmid}: ${r.stderr.trim()}`);
    releaseVmid(vmidClaims(ctx.root), vmid, rec.id);
    rmSync(dir(ctx, rec.id), { recursive: true, force: true });
  },

  async pause(ctx, rec) {
    await cli(saved(ctx, rec)).ok("qm", ["suspend", vmidOf(ctx, rec)]);
  },

  async resume(ctx, rec) {
    await cli(saved(ctx, rec)).ok("qm", ["resume", vmidOf(ctx, rec)]);
  },

  async exec(ctx, rec, o) {
    if (o.detach) throw new NexcageError("unsupported", "proxmox-vm: exec --detach is not available through the guest agent");
    if (o.tty) throw new NexcageError("unsupported", "proxmox-vm: exec with a terminal is not available through the guest agent");
    const proc = parseProcess(JSON.parse(readFileSync(o.processFile, "utf8")));
    // no shell in between: the guest agent runs argv as given
    const out = await cli(saved(ctx, rec)).ok("qm", ["guest", "exec", vmidOf(ctx, rec), "--", ...(proc.args ?? [])]);
    const res = decodeGuestExec(out);
    if (res.out) process.stdout.write(res.out);
    if (res.err) process.stderr.write(res.err);
    return res.exitcode;
  },

  async update(ctx, rec, resources) {
    const r = resources as Resources;
    const args: string[] = [];
    if (r.memory?.limit && r.memory.limit > 0) args.push("--memory", String(Math.ceil(r.memory.limit / 2 ** 20)));
    if (!args.length) throw new NexcageError("unsupported", "proxmox-vm: only memory.limit can be updated");
    await cli(saved(ctx, rec)).ok("qm", ["set", vmidOf(ctx, rec), ...args]);
  },

  status(ctx, rec): Status {
    if (rec.creating) return "creating";
    let cfg: ProxmoxConfig;
    try {
      cfg = saved(ctx, rec);
    } catch {
      return "stopped";
    }
    const r = qmSync(cfg, ["status", vmidOf(ctx, rec)]);
    if (r.code !== 0) {
      log().debug(`proxmox-vm status ${rec.id}: ${r.err.trim()}`);
      return "stopped";
    }
    const st = vmStatus(r.out);
    if (st === "stopped") return existsSync(startedMark(ctx, rec.id)) ? "stopped" : "created";
    return st;
  },

  async snapshotHooks() {
    throw new NexcageError("unsupported", "proxmox-vm: a VM's disks are not snapshotted by this build (qm snapshot is not wired up); snapshots cover containers");
  },

  pids: (_ctx, rec) => (rec.pid > 0 ? [rec.pid] : []),
  stats: (_ctx, rec) => cgroupStats(rec.pid),
};
