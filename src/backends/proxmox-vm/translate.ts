// OCI bundle → `qm create` options, and qm's outputs → nexcage values. Pure, unit-tested.
import { NexcageError } from "../../core/errors.ts";
import type { Spec } from "../../oci/spec.ts";
import { cpusetCount } from "../../proxmox/resources.ts";

export const DISK_ANNOTATION = "org.nexcage.proxmox.disk";
export const NET_ANNOTATION = "org.nexcage.proxmox.net0";

function refuse(field: string, why: string): never {
  throw new NexcageError("invalidSpec", `proxmox-vm cannot honour ${field}: ${why}`);
}

/** a VM name Proxmox accepts (DNS-like); the OCI id is usually one already */
export function vmName(s: string): string {
  const n = s.toLowerCase().replace(/[^a-z0-9.-]+/g, "-").replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, "").slice(0, 63);
  return n || "vm";
}

export function qmCreateOptions({ id, spec, storage }: { id: string; spec: Spec; storage: string }): string[] {
  const a = spec.annotations ?? {};
  const disk = a[DISK_ANNOTATION];
  if (!disk) refuse(`annotation ${DISK_ANNOTATION}`, "a VM needs a disk image to boot: an absolute path or a volume (STORAGE:iso/x.img)");
  if (!disk.startsWith("/") && !/^[a-zA-Z][\w.-]*:.+/.test(disk)) refuse(`annotation ${DISK_ANNOTATION}`, `${JSON.stringify(disk)} is neither an absolute path nor a volume`);
  if (disk.includes(",")) refuse(`annotation ${DISK_ANNOTATION}`, "the path cannot contain commas");
  const r = spec.linux?.resources ?? {};
  const o = ["--name", vmName(spec.hostname || id)];
  const mem = r.memory?.limit;
  if (mem !== undefined && mem > 0) {
    const mib = Math.ceil(mem / 2 ** 20);
    if (mib < 16) refuse("linux.resources.memory.limit", "a VM needs at least 16 MiB");
    o.push("--memory", String(mib));
  }
  const cpu = r.cpu;
  let cores = 1;
  if (cpu?.cpus) cores = cpusetCount(cpu.cpus);
  else if (cpu?.quota && cpu.quota > 0) cores = Math.max(1, Math.ceil(cpu.quota / (cpu.period || 100000)));
  o.push("--cores", String(cores));
  // the image is copied into a new volume on the storage (PVE's import-from)
  o.push("--scsi0", `${storage}:0,import-from=${disk}`);
  o.push("--agent", "1", "--ostype", "l26");
  if (a[NET_ANNOTATION]) o.push("--net0", a[NET_ANNOTATION]);
  o.push("--description", `nexcage container ${id}`);
  return o;
}

/** `qm status` → an OCI status (created/stopped is decided by the caller: whether the VM ever ran) */
export function vmStatus(out: string): "running" | "paused" | "stopped" {
  const s = /^status:\s*(\S+)/m.exec(out)?.[1] ?? "stopped";
  if (s === "running" || s === "prelaunch" || s === "inmigrate" || s === "postmigrate") return "running";
  if (s === "paused" || s === "suspended" || s === "io-error") return "paused";
  return "stopped";
}

/** the PID column of `qm list` for a VMID (0 when stopped or absent) */
export function qmListPid(out: string, vmid: string): number {
  for (const line of out.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[0] === vmid) return Number(f[f.length - 1]) || 0;
  }
  return 0;
}

/** `qm guest exec` prints the agent's answer as JSON and exits 0 whatever the guest's code */
export function decodeGuestExec(out: string): { exitcode: number; out: string; err: string } {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(out) as Record<string, unknown>;
  } catch {
    throw new NexcageError("failure", `proxmox-vm: qm guest exec printed no JSON: ${out.slice(0, 200)}`);
  }
  if (!j.exited) throw new NexcageError("timeout", "proxmox-vm: the guest command did not finish before qm's timeout");
  const code = Number(j.exitcode);
  if (!Number.isInteger(code)) throw new NexcageError("failure", `proxmox-vm: qm guest exec gave no exit code: ${out.slice(0, 200)}`);
  return { exitcode: code, out: String(j["out-data"] ?? ""), err: String(j["err-data"] ?? "") };
}
