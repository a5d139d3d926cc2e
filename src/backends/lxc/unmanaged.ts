// Plain LXC containers under the configured lxcpath that nexcage did not create (lxc-create, Proxmox's
// pct ...): `nexcage list` shows them, marked, so an operator sees everything on the host in one place.
import { readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import type { Status } from "../types.ts";
import type { OciState } from "../../oci/state.ts";
import { OCI_VERSION, rfc3339Nano } from "../../oci/state.ts";

export const UNMANAGED_ANNOTATION = "org.nexcage.unmanaged";
export const DEFAULT_LXCPATH = "/var/lib/lxc";
/** the first line nexcage writes into every LXC config it generates */
export const CONFIG_MARK = "# written by nexcage";

const STATUS: Record<string, Status> = { RUNNING: "running", FROZEN: "paused", FREEZING: "paused", THAWED: "running", STARTING: "creating", STOPPING: "running" };

export async function unmanagedLxc(path: string): Promise<OciState[]> {
  let names: string[];
  let lxcpath: string;
  try {
    lxcpath = realpathSync(path); // liblxc's command socket names derive from the canonical path
    names = readdirSync(lxcpath);
  } catch {
    return [];
  }
  const found: { name: string; created: number; rootfs: string }[] = [];
  for (const name of names) {
    let text: string;
    try {
      text = readFileSync(`${lxcpath}/${name}/config`, "utf8");
    } catch {
      continue;
    }
    if (text.startsWith(CONFIG_MARK)) continue;
    const rootfs = /^\s*lxc\.rootfs\.path\s*=\s*(.*)$/m.exec(text)?.[1]?.trim().replace(/^dir:/, "") ?? "";
    found.push({ name, created: statSync(`${lxcpath}/${name}/config`).mtimeMs, rootfs });
  }
  if (!found.length) return [];
  const { lxcState } = await import("../../native/lxc.ts");
  return found.map(({ name, created, rootfs }) => {
    const st = lxcState(name, lxcpath);
    const status = STATUS[st.state] ?? "stopped";
    return {
      ociVersion: OCI_VERSION,
      id: name,
      pid: status === "stopped" ? 0 : st.pid,
      status,
      bundle: `${lxcpath}/${name}`,
      rootfs,
      created: rfc3339Nano(created),
      annotations: { [UNMANAGED_ANNOTATION]: "lxc" },
      owner: "root",
    };
  });
}
