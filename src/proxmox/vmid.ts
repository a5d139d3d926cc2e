// OCI id ↔ VMID. An explicit VMID (the id itself, or the org.nexcage.vmid annotation), else Proxmox's next
// free id. The mapping is claimed atomically in nexcage's state (<backend root>/vmids/<vmid> holds the
// id, created with O_EXCL) before anything is created, then checked against Proxmox itself (CTs and VMs
// share one VMID namespace).
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { NexcageError } from "../core/errors.ts";
import type { PveCli } from "./cli.ts";

export const VMID_RE = /^[1-9][0-9]{2,8}$/;

/** CTs and VMs share one VMID namespace: so do proxmox-lxc and proxmox-vm containers */
export const vmidClaims = (root: string) => `${root}/proxmox/vmids`;
export const VMID_ANNOTATION = "org.nexcage.vmid";

/** the VMID asked for, if any; throws on a malformed one */
export function requestedVmid(id: string, annotations: Record<string, string>): string | undefined {
  const a = annotations[VMID_ANNOTATION];
  if (a !== undefined) {
    if (!VMID_RE.test(a)) throw new NexcageError("invalidSpec", `annotation ${VMID_ANNOTATION}: ${JSON.stringify(a)} is not a VMID (100 to 999999999)`);
    if (VMID_RE.test(id) && id !== a) throw new NexcageError("invalidSpec", `container id ${id} is a VMID but annotation ${VMID_ANNOTATION} says ${a}`);
    return a;
  }
  return VMID_RE.test(id) ? id : undefined;
}

/** who holds a VMID in this nexcage root */
export function vmidOwner(dir: string, vmid: string): string | undefined {
  try {
    return readFileSync(`${dir}/${vmid}`, "utf8");
  } catch {
    return undefined;
  }
}

function claim(dir: string, vmid: string, id: string): boolean {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    const fd = openSync(`${dir}/${vmid}`, "wx", 0o600);
    writeSync(fd, id);
    closeSync(fd);
    return true;
  } catch (e) {
    // held by this same id: a create of it that crashed (the runtime's id lock rules out a live one)
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return vmidOwner(dir, vmid) === id;
    throw e;
  }
}

export function releaseVmid(dir: string, vmid: string, id: string): void {
  if (vmidOwner(dir, vmid) === id) rmSync(`${dir}/${vmid}`, { force: true });
}

/** Is the VMID free on the Proxmox side? (`pct status`/`qm status` fail with "does not exist" when it is) */
async function freeInProxmox(pve: PveCli, vmid: string): Promise<"lxc" | "qemu" | undefined> {
  for (const [tool, kind] of [["pct", "lxc"], ["qm", "qemu"]] as const) {
    const r = await pve.run(tool, ["status", vmid]);
    if (r.code === 0) return kind;
    if (!/does not exist/.test(r.stderr)) throw new NexcageError("failure", `proxmox: ${tool} status ${vmid}: ${r.stderr.trim() || `exit ${r.code}`}`);
  }
  return undefined;
}

/** Claim a VMID for id: explicit or next free. Nothing is created on a collision. */
export async function allocateVmid(pve: PveCli, dir: string, id: string, annotations: Record<string, string>): Promise<string> {
  const want = requestedVmid(id, annotations);
  if (want) {
    if (!claim(dir, want, id)) throw new NexcageError("exists", `VMID ${want} is already used by container ${vmidOwner(dir, want)}`);
    const kind = await freeInProxmox(pve, want).catch((e) => {
      releaseVmid(dir, want, id);
      throw e;
    });
    if (kind) {
      releaseVmid(dir, want, id);
      throw new NexcageError("exists", `VMID ${want} is already used on this node (${kind === "lxc" ? "CT" : "VM"} ${want})`);
    }
    return want;
  }
  // nextid can race with another creator: claim, verify, and move on when taken
  for (let attempt = 0; attempt < 20; attempt++) {
    const next = (await pve.ok("pvesh", ["get", "/cluster/nextid"])).trim().replace(/^"|"$/g, "");
    if (!VMID_RE.test(next)) throw new NexcageError("failure", `proxmox: pvesh get /cluster/nextid returned ${JSON.stringify(next)}`);
    for (let v = Number(next); v < Number(next) + 50; v++) {
      const vmid = String(v);
      if (!claim(dir, vmid, id)) continue;
      const kind = await freeInProxmox(pve, vmid).catch((e) => {
        releaseVmid(dir, vmid, id);
        throw e;
      });
      if (!kind) return vmid;
      releaseVmid(dir, vmid, id);
    }
  }
  throw new NexcageError("exists", "proxmox: no free VMID found");
}
