// OCI bundle → what Proxmox must know about the container: `pct create` options, and where its image
// comes from. Pure, so every row is unit-tested; what pct cannot express is refused by field name.
import { NexcageError } from "../../core/errors.ts";
import type { Spec } from "../../oci/spec.ts";
import { cpusetCount } from "../../proxmox/resources.ts";

export const ANNOTATIONS = {
  template: "org.nexcage.proxmox.template",
  rootfs: "org.nexcage.proxmox.rootfs", // "STORAGE:GiB"
  features: "org.nexcage.proxmox.features",
  unprivileged: "org.nexcage.proxmox.unprivileged",
  net: "org.nexcage.proxmox.net", // org.nexcage.proxmox.net0 ... net9
} as const;

function refuse(field: string, why: string): never {
  throw new NexcageError("invalidSpec", `proxmox-lxc cannot honour ${field}: ${why}`);
}

const MiB = 1024 * 1024;
const HOSTNAME = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

export interface PctInput {
  id: string;
  spec: Spec;
  /** the root volume, already allocated: "local-zfs:subvol-100-disk-0" */
  rootVolid: string;
  sizeGiB: number;
}

/** `pct create <vmid> <template>` options (after the two positionals) */
export function pctCreateOptions({ id, spec, rootVolid, sizeGiB }: PctInput): string[] {
  const a = spec.annotations ?? {};
  const o: string[] = [];
  const put = (k: string, v: string | number) => o.push(`--${k}`, String(v));
  if (spec.hostname) {
    if (!HOSTNAME.test(spec.hostname)) refuse("hostname", `${JSON.stringify(spec.hostname)} is not a DNS name Proxmox accepts`);
    put("hostname", spec.hostname);
  }
  const r = spec.linux?.resources ?? {};
  const mem = r.memory;
  if (mem?.limit !== undefined && mem.limit > 0) {
    const mib = Math.ceil(mem.limit / MiB);
    if (mib < 16) refuse("linux.resources.memory.limit", "Proxmox needs at least 16 MiB");
    put("memory", mib);
    if (mem.swap !== undefined) {
      if (mem.swap < 0) refuse("linux.resources.memory.swap", "Proxmox has no unlimited swap; give memory+swap in bytes");
      put("swap", Math.max(0, Math.ceil((mem.swap - mem.limit) / MiB)));
    }
  } else if (mem?.swap !== undefined && mem.swap >= 0) {
    refuse("linux.resources.memory.swap", "needs memory.limit (OCI swap is memory+swap)");
  }
  const cpu = r.cpu;
  if (cpu?.quota !== undefined && cpu.quota > 0) {
    const limit = Math.round((cpu.quota / (cpu.period || 100000)) * 100) / 100;
    if (limit > 8192) refuse("linux.resources.cpu.quota", "cpulimit above 8192 CPUs");
    put("cpulimit", limit);
  }
  if (cpu?.cpus) put("cores", cpusetCount(cpu.cpus));
  if (cpu?.shares) {
    if (cpu.shares > 500000) refuse("linux.resources.cpu.shares", "cpuunits go up to 500000");
    put("cpuunits", cpu.shares);
  }
  put("rootfs", `${rootVolid},size=${sizeGiB}G`);
  // host directories bound into the container become Proxmox bind mount points (it backs them up/migrates around them)
  let mp = 0;
  for (const [i, m] of (spec.mounts ?? []).entries()) {
    const opts = m.options ?? [];
    const bind = m.type === "bind" || opts.includes("bind") || opts.includes("rbind");
    if (!bind || !m.source?.startsWith("/") || /^\/(dev|proc|sys|run)(\/|$)/.test(m.destination)) continue;
    if (m.source.includes(",") || m.destination.includes(",")) refuse(`mounts[${i}]`, "Proxmox mount point paths cannot contain commas");
    if (mp > 255) refuse(`mounts[${i}]`, "more than 256 mount points");
    put(`mp${mp++}`, `${m.source},mp=${m.destination}${opts.includes("ro") ? ",ro=1" : ""}`);
  }
  for (let n = 0; n < 10; n++) {
    const net = a[`${ANNOTATIONS.net}${n}`];
    if (net !== undefined) put(`net${n}`, net);
  }
  const features = a[ANNOTATIONS.features];
  if (features) put("features", features);
  const unpriv = a[ANNOTATIONS.unprivileged];
  if (unpriv !== undefined) {
    if (unpriv !== "0" && unpriv !== "1") refuse(`annotation ${ANNOTATIONS.unprivileged}`, "must be 0 or 1");
    put("unprivileged", unpriv);
  }
  put("ostype", "unmanaged");
  put("description", `nexcage container ${id}`);
  return o;
}

/** root volume: annotation "STORAGE:GiB", else the configured storage and size */
export function rootfsTarget(annotations: Record<string, string>, storage: string, size: number): { storage: string; sizeGiB: number } {
  const v = annotations[ANNOTATIONS.rootfs];
  if (v === undefined) return { storage, sizeGiB: size };
  const m = /^([a-zA-Z][\w.-]*):(\d+)$/.exec(v);
  if (!m) refuse(`annotation ${ANNOTATIONS.rootfs}`, `${JSON.stringify(v)} is not STORAGE:GiB (e.g. local-zfs:8)`);
  return { storage: m[1] as string, sizeGiB: Number(m[2]) };
}

export type ImageSource = { kind: "vztmpl"; volid: string } | { kind: "oci-archive"; volid: string } | { kind: "bundle" };

const DOCKER_REF = /^(?:[a-z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

/** classify the org.nexcage.proxmox.template annotation, strictly */
export function classifyImage(annotations: Record<string, string>): ImageSource {
  const v = annotations[ANNOTATIONS.template];
  if (v === undefined || v === "") return { kind: "bundle" };
  const vol = /^([a-zA-Z][\w.-]*):(vztmpl|import)\/([^/]+)$/.exec(v);
  if (vol) {
    const file = vol[3] as string;
    if (/\.tar\.(gz|xz|zst)$/.test(file) && vol[2] === "vztmpl") return { kind: "vztmpl", volid: v };
    if (/\.tar$/.test(file)) return { kind: "oci-archive", volid: v };
    refuse(`annotation ${ANNOTATIONS.template}`, `${v}: a template is a .tar.gz, .tar.xz or .tar.zst (or an OCI archive .tar)`);
  }
  if (DOCKER_REF.test(v) && !v.startsWith("/")) {
    refuse(
      `annotation ${ANNOTATIONS.template}`,
      `${v} is a registry image reference and nexcage pulls nothing: save it as an OCI archive (skopeo copy docker://${v} oci-archive:image.tar), upload it to a storage's template dir, and name it as STORAGE:vztmpl/image.tar`,
    );
  }
  return refuse(`annotation ${ANNOTATIONS.template}`, `${JSON.stringify(v)} is not a volume (STORAGE:vztmpl/NAME)`);
}
