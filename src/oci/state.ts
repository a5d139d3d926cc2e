// The runtime-spec state document exactly as runc prints it (field order, RFC3339Nano times, omitempty).
import type { ContainerRecord, Status } from "../backends/types.ts";

export const OCI_VERSION = "1.0.2";

export interface OciState {
  ociVersion: string;
  id: string;
  pid: number;
  status: Status;
  bundle: string;
  rootfs: string;
  created: string;
  annotations?: Record<string, string>;
  owner: string;
}

/** runc's containerState: annotations omitted when empty and placed before owner; pid 0 once stopped. */
export function toOciState(rec: ContainerRecord, status: Status): OciState {
  return {
    ociVersion: OCI_VERSION,
    id: rec.id,
    pid: status === "stopped" ? 0 : rec.pid,
    status,
    bundle: rec.bundle,
    rootfs: rec.rootfs,
    created: rec.created,
    ...(Object.keys(rec.annotations).length ? { annotations: rec.annotations } : {}),
    owner: rec.owner,
  };
}

/** The state passed to hooks on stdin (runtime-spec: ociVersion, id, status, pid, bundle, annotations). */
export function hookState(rec: ContainerRecord, status: Status): string {
  return JSON.stringify({
    ociVersion: OCI_VERSION,
    id: rec.id,
    status,
    pid: rec.pid,
    bundle: rec.bundle,
    annotations: rec.annotations,
  });
}

/** Go's time.RFC3339Nano in UTC: fractional seconds with trailing zeros trimmed. */
export function rfc3339Nano(epochMs: number, nanosWithinMs = 0): string {
  const d = new Date(Math.floor(epochMs));
  const iso = d.toISOString(); // 2026-11-25T02:33:00.123Z
  const base = iso.slice(0, 19);
  const ms = d.getUTCMilliseconds();
  const frac = `${String(ms).padStart(3, "0")}${String(Math.floor(nanosWithinMs)).padStart(6, "0")}`.replace(/0+$/, "");
  return `${base}${frac ? `.${frac}` : ""}Z`;
}

export function nowRfc3339Nano(): string {
  const t = performance.timeOrigin + performance.now(); // ms with sub-ms precision
  const ms = Math.floor(t);
  return rfc3339Nano(ms, Math.floor((t - ms) * 1e6));
}
