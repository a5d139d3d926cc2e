// Backend registry. Backends load lazily; a name without an implementation in this build is a clear error.
import type { Backend, BackendName } from "./types.ts";
import { NexcageError } from "../core/errors.ts";

const loaders: Partial<Record<BackendName, () => Promise<Backend>>> = {
  crun: async () => (await import("./crun/index.ts")).crunBackend,
  runc: async () => (await import("./runc/index.ts")).runcBackend,
  lxc: async () => (await import("./lxc/index.ts")).lxcBackend,
  "proxmox-lxc": async () => (await import("./proxmox-lxc/index.ts")).proxmoxLxcBackend,
  "proxmox-vm": async () => (await import("./proxmox-vm/index.ts")).proxmoxVmBackend,
};

export function implementedBackends(): BackendName[] {
  return Object.keys(loaders) as BackendName[];
}

export async function getBackend(name: BackendName): Promise<Backend> {
  const load = loaders[name];
  if (!load) {
    throw new NexcageError("unsupported", `backend ${name} is not available in this build (available: ${implementedBackends().join(", ")})`);
  }
  return load();
}
